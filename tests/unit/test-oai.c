/*
 * test-oai.c — the OpenAI-compatible JSON mapping (lib/oai): every accepted
 * field lands in struct exec_request; each bad field is refused with a
 * message naming it; what plot cannot do (n > 1, logprobs, tools) is
 * refused, not ignored; responses, chunks and errors have OpenAI's shape;
 * output that is not UTF-8 still makes JSON; split UTF-8 is held back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plot/oai.h"
#include "plot/pool.h"

static int parse(const char *body, int kind, struct oai_request *r, char *err)
{
	return oai_request_parse(body, strlen(body), kind, r, err, 256);
}

static void test_chat_fields(void **state)
{
	struct oai_request r;
	char err[256];

	(void)state;
	assert_int_equal(parse("{\"model\": \"m\", \"messages\": [{\"role\": \"system\", \"content\": "
			       "\"be brief\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", "
			       "\"text\": \"a\"}, {\"type\": \"text\", \"text\": \"b\"}]}], "
			       "\"max_tokens\": 5, \"max_completion_tokens\": 7, \"temperature\": 0, "
			       "\"top_p\": 0.5, \"seed\": -1, \"stop\": \"END\", \"stream\": true, "
			       "\"stream_options\": {\"include_usage\": true}, \"frequency_penalty\": 0.5, "
			       "\"presence_penalty\": -1, \"n\": 1, \"priority\": \"high\", "
			       "\"deadline\": 2.5, \"cost\": 3, \"detach\": true}",
			       OAI_CHAT, &r, err), 0);
	assert_string_equal(r.model, "m");
	assert_int_equal(r.ex.n_messages, 2);
	assert_string_equal(r.ex.messages[1].role, "user");
	assert_string_equal(r.ex.messages[1].content, "ab");
	assert_null(r.ex.prompt);
	assert_int_equal(r.ex.max_tokens, 7); /* the newer name wins */
	assert_true(r.ex.has & EXEC_HAS_TEMPERATURE);
	assert_true(r.ex.temperature == 0);
	assert_true(r.ex.top_p == 0.5);
	assert_true(r.ex.seed == UINT64_MAX);
	assert_int_equal(r.ex.n_stop, 1);
	assert_string_equal(r.ex.stop[0], "END");
	assert_true(r.stream && r.include_usage && r.detach);
	assert_true(r.ex.frequency_penalty == 0.5 && r.ex.presence_penalty == -1);
	assert_true(r.ex.has & EXEC_HAS_PRESENCE_PENALTY);
	assert_int_equal(r.ex.priority, POOL_PRIO_HIGH);
	assert_true(r.ex.timeout_ns == 2500000000ull);
	assert_int_equal(r.ex.cost, 3);
	oai_request_free(&r);
}

static void test_completion_prompt(void **state)
{
	struct oai_request r;
	char err[256];

	(void)state;
	assert_int_equal(parse("{\"prompt\": [\"x y\"]}", OAI_COMPLETION, &r, err), 0);
	assert_string_equal(r.ex.prompt, "x y");
	assert_true(r.ex.raw);
	assert_null(r.model);
	assert_int_equal(r.ex.has, 0);
	assert_int_equal(r.ex.priority, POOL_PRIO_NORMAL);
	oai_request_free(&r);
}

static void refused(const char *body, int kind, const char *want)
{
	struct oai_request r;
	char err[256] = "";

	assert_int_equal(parse(body, kind, &r, err), -1);
	if (!strstr(err, want))
		fail_msg("'%s': got '%s', want '%s'", body, err, want);
	oai_request_free(&r);
}

static void test_refusals(void **state)
{
	(void)state;
	refused("{\"messages\": [}", OAI_CHAT, "malformed JSON at line 1");
	refused("[1]", OAI_CHAT, "the body must be a JSON object");
	refused("{}", OAI_CHAT, "messages: expected a non-empty array");
	refused("{\"messages\": [{\"content\": \"x\"}]}", OAI_CHAT, "messages[0].role");
	refused("{\"messages\": [{\"role\": \"user\", \"content\": 3}]}", OAI_CHAT,
		"messages[0].content: expected a string or an array");
	refused("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
		OAI_CHAT, "messages[0].content[0]: only");
	refused("{\"prompt\": [1, 2]}", OAI_COMPLETION, "prompt: an array must hold exactly one");
	refused("{\"prompt\": [3]}", OAI_COMPLETION, "token arrays are not supported");
	refused("{\"prompt\": \"x\", \"max_tokens\": 0}", OAI_COMPLETION,
		"max_tokens: expected an integer in [1, 4294967295], got 0");
	refused("{\"prompt\": \"x\", \"max_tokens\": 1.5}", OAI_COMPLETION, "max_tokens");
	refused("{\"prompt\": \"x\", \"temperature\": \"hot\"}", OAI_COMPLETION,
		"temperature: expected a number");
	refused("{\"prompt\": \"x\", \"top_p\": 2}", OAI_COMPLETION,
		"top_p: expected a number in [0, 1], got 2");
	refused("{\"prompt\": \"x\", \"n\": 2}", OAI_COMPLETION, "n: only n=1");
	refused("{\"prompt\": \"x\", \"logprobs\": 2}", OAI_COMPLETION, "logprobs: not supported");
	refused("{\"prompt\": \"x\", \"tools\": [{}]}", OAI_COMPLETION, "tools: not supported");
	refused("{\"prompt\": \"x\", \"echo\": true}", OAI_COMPLETION, "echo: not supported");
	refused("{\"prompt\": \"x\", \"stop\": [\"\"]}", OAI_COMPLETION,
		"stop[0]: expected a non-empty string");
	refused("{\"prompt\": \"x\", \"stop\": 5}", OAI_COMPLETION, "stop: expected a string");
	refused("{\"prompt\": \"x\", \"priority\": \"urgent\"}", OAI_COMPLETION,
		"priority: expected low, normal, high or critical, got 'urgent'");
	refused("{\"prompt\": \"x\", \"deadline\": 0}", OAI_COMPLETION, "deadline: expected");
	refused("{\"prompt\": \"x\", \"cost\": 0}", OAI_COMPLETION, "cost: expected an integer");
	refused("{\"prompt\": \"x\", \"stream\": 1}", OAI_COMPLETION, "stream: expected true");
	refused("{\"prompt\": \"x\", \"prompt\": \"y\"}", OAI_COMPLETION, "malformed JSON");
	refused("{\"prompt\": \"a\\u0000b\"}", OAI_COMPLETION, "is not allowed without JSON_ALLOW_NUL");
}

static void test_responses(void **state)
{
	struct oai_usage u = { 3, 2 };
	char *s;

	(void)state;
	s = oai_response_json(OAI_CHAT, 7, 100, "m", "hi", 2, "length", &u);
	assert_string_equal(s, "{\"id\":\"chatcmpl-7\",\"object\":\"chat.completion\",\"created\":100,"
			    "\"model\":\"m\",\"choices\":[{\"index\":0,\"finish_reason\":\"length\","
			    "\"logprobs\":null,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"}}],"
			    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}");
	free(s);
	s = oai_chunk_json(OAI_CHAT, 7, 100, "m", "", 0, 0, "stop", NULL);
	assert_non_null(strstr(s, "\"finish_reason\":\"stop\""));
	assert_non_null(strstr(s, "\"delta\":{}"));
	free(s);
	s = oai_chunk_json(OAI_COMPLETION, 7, 100, "m", NULL, 0, 0, NULL, &u);
	assert_non_null(strstr(s, "\"choices\":[],\"usage\":{\"prompt_tokens\":3"));
	free(s);
	s = oai_error_json("bad", "invalid_request_error", NULL, "invalid");
	assert_string_equal(s, "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\","
			    "\"param\":null,\"code\":\"invalid\"}}");
	free(s);
	/* bytes that are not UTF-8 become U+FFFD, the rest is kept */
	s = oai_chunk_json(OAI_COMPLETION, 1, 0, "m", "a\xff" "b\xc3\xa9", 5, 0, NULL, NULL);
	assert_non_null(strstr(s, "\"text\":\"a\xef\xbf\xbd" "b\xc3\xa9\""));
	free(s);
}

static void test_utf8_hold(void **state)
{
	(void)state;
	assert_int_equal(oai_utf8_complete("abc", 3), 3);
	assert_int_equal(oai_utf8_complete("a\xc3", 2), 1);           /* é split */
	assert_int_equal(oai_utf8_complete("a\xc3\xa9", 3), 3);
	assert_int_equal(oai_utf8_complete("\xe2\x82", 2), 0);        /* € split */
	assert_int_equal(oai_utf8_complete("\xf0\x9f\x98", 3), 0);    /* emoji split */
	assert_int_equal(oai_utf8_complete("\xf0\x9f\x98\x80", 4), 4);
	assert_int_equal(oai_utf8_complete("\x80\x80", 2), 2);        /* no lead: not held */
	assert_int_equal(oai_utf8_complete("", 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chat_fields),
		cmocka_unit_test(test_completion_prompt),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_utf8_hold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * template.h — chat templates: turn a conversation into the prompt text a
 * model was trained on, byte for byte what its Jinja chat_template renders.
 *
 * plot does not run Jinja. It recognises the template family from the
 * template text and renders that family's canonical template in C:
 *
 *   chatml  <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen2/2.5). A default
 *           system message written in the template (SmolLM2's "You are a
 *           helpful AI assistant named SmolLM...", Qwen's "You are Qwen...")
 *           is extracted and used when the conversation has none.
 *   llama3  <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>, bos
 *           first, contents trimmed (Meta-Llama-3-*-Instruct). The 3.1+
 *           shape (Llama 3.1/3.2/3.3) always opens with a system header
 *           "Cutting Knowledge Date: December 2023\nToday Date: D\n\n" +
 *           system message; D is the template's own fallback date ("26 Jul
 *           2024"), not today's date that strftime_now would give, so a
 *           prompt renders the same every day. Tool turns are refused.
 *   gemma   <start_of_turn>user|model\n...<end_of_turn>\n, bos first,
 *           contents trimmed, a system message folded into the first user
 *           turn followed by the separator the template uses ('\n\n' in
 *           Gemma 3); Gemma 1/2 templates that refuse a system role, refuse.
 *   llama2  [INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] answer </s>, bos
 *           before every user turn, contents stripped (Llama-2-*-chat).
 *   mistral [INST] ... [/INST]answer</s>, bos first, no system role
 *           (Mistral/Mixtral Instruct v0.1).
 *   raw     no markup: the messages' contents concatenated, so a single user
 *           message is passed through as-is. Never detected; chosen by name.
 *
 * Templates that alternate-check roles (gemma, llama2, mistral) fail the
 * same conversations Jinja's raise_exception would. Text the template emits
 * for bos/eos is whatever the caller passes (the vocabulary's texts), so a
 * caller tokenizing the result with TOK_PARSE_SPECIAL should not also add
 * bos (tmpl_emits_bos()).
 */
#ifndef PLOT_TEMPLATE_H
#define PLOT_TEMPLATE_H

#include <stddef.h>

struct gguf;
struct tmpl;

enum tmpl_family {
	TMPL_RAW, TMPL_CHATML, TMPL_LLAMA3, TMPL_GEMMA, TMPL_LLAMA2, TMPL_MISTRAL,
};

#define TMPL_MAX_TEXT (16u << 20) /* bound on template and rendered text */

struct tmpl_msg {
	const char *role;    /* "system", "user" or "assistant" */
	const char *content; /* NUL-terminated UTF-8 */
};

/* Recognise a Jinja chat template; NULL with err ("unknown chat template:
 * no known family's markers (<|im_start|>, <|start_header_id|>, ...)"). */
struct tmpl *tmpl_new(const char *jinja, size_t len, char *err, size_t errlen);
/* A family's canonical template, without a default system message. */
struct tmpl *tmpl_new_family(enum tmpl_family f);
/* From tokenizer.chat_template; a file without one whose
 * general.architecture is a Gemma gets the gemma family (Gemma's GGUFs are
 * often converted without the template), anything else is an error. */
struct tmpl *tmpl_from_gguf(const struct gguf *g, char *err, size_t errlen);
void tmpl_free(struct tmpl *t);

enum tmpl_family tmpl_family(const struct tmpl *t);
const char *tmpl_family_name(enum tmpl_family f);
/* "chatml", "llama3", "gemma", "llama2", "mistral", "raw": 0, else -1. */
int tmpl_family_parse(const char *name, enum tmpl_family *out);
/* Whether the rendered text starts with the bos text. */
int tmpl_emits_bos(const struct tmpl *t);

/* Render n messages (+ the assistant turn opener when add_generation_prompt)
 * into a malloc'd NUL-terminated string. bos/eos: the vocabulary's texts
 * (NULL = ""). Returns 0, or -1 with err naming the message at fault. */
int tmpl_render(const struct tmpl *t, const struct tmpl_msg *msgs, size_t n,
                int add_generation_prompt, const char *bos, const char *eos, char **out,
                size_t *len, char *err, size_t errlen);

#endif

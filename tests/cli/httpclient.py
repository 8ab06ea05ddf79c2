#!/usr/bin/env python3
"""httpclient.py — the official `openai` package against plotd's HTTP front,
for tests/cli/daemon-http.bats and serve-http-smollm2.bats.

Usage: httpclient.py BASE_URL CHECK [ARGS...]. Each CHECK asserts what the
OpenAI API promises a client (object shapes, streaming, error classes) and
prints what the bats test compares; it exits 1 with a message on a mismatch.

  chat PROMPT [MAX]      non-streaming chat: prints the content
  chatstream PROMPT [MAX] streaming chat with include_usage: prints the
                          content joined from the deltas
  complete PROMPT [MAX]  /v1/completions, not streaming: prints the text
  completestream PROMPT [MAX]
  models                 prints the model ids, one a line
  error KIND ARGS...     expects an error: KIND is notfound (unknown model),
                         badrequest (n=2), ratelimit (a full queue); prints
                         the status, the Retry-After header, the message
Env: PLOT_HTTP_TOKEN is the api key (default "none").
"""
import os
import sys

import openai


def fail(msg):
    print(f"httpclient: {msg}", file=sys.stderr)
    sys.exit(1)


def client(base):
    return openai.OpenAI(base_url=base + "/v1", api_key=os.environ.get("PLOT_HTTP_TOKEN", "none"),
                         max_retries=0, timeout=60)


def msgs(prompt):
    return [{"role": "user", "content": prompt}]


def check_usage(u, completion_tokens=None):
    if u is None or u.total_tokens != u.prompt_tokens + u.completion_tokens:
        fail(f"bad usage {u}")
    if completion_tokens is not None and u.completion_tokens != completion_tokens:
        fail(f"usage says {u.completion_tokens} completion tokens, expected {completion_tokens}")


def chat(c, prompt, max_tokens):
    r = c.chat.completions.create(model=os.environ.get("PLOT_HTTP_MODEL", "echo"),
                                  messages=msgs(prompt), max_tokens=max_tokens, temperature=0)
    if r.object != "chat.completion" or len(r.choices) != 1:
        fail(f"bad response {r}")
    ch = r.choices[0]
    if ch.message.role != "assistant" or ch.finish_reason not in ("stop", "length"):
        fail(f"bad choice {ch}")
    check_usage(r.usage)
    print(ch.message.content, end="")


def chatstream(c, prompt, max_tokens):
    s = c.chat.completions.create(model=os.environ.get("PLOT_HTTP_MODEL", "echo"),
                                  messages=msgs(prompt), max_tokens=max_tokens, temperature=0,
                                  stream=True, stream_options={"include_usage": True})
    text, finish, usage, n = "", None, None, 0
    for ev in s:
        if ev.object != "chat.completion.chunk":
            fail(f"bad chunk {ev}")
        if ev.usage is not None:
            usage = ev.usage
            continue
        ch = ev.choices[0]
        if n == 0 and ch.delta.role != "assistant":
            fail(f"first delta lacks the role: {ev}")
        n += 1
        text += ch.delta.content or ""
        finish = ch.finish_reason or finish
    if finish not in ("stop", "length"):
        fail(f"no finish_reason in the stream (got {finish})")
    check_usage(usage)
    print(text, end="")


def complete(c, prompt, max_tokens, stream=False):
    kw = dict(model=os.environ.get("PLOT_HTTP_MODEL", "echo"), prompt=prompt,
              max_tokens=max_tokens, temperature=0)
    if not stream:
        r = c.completions.create(**kw)
        if r.object != "text_completion" or r.choices[0].finish_reason not in ("stop", "length"):
            fail(f"bad response {r}")
        check_usage(r.usage)
        print(r.choices[0].text, end="")
        return
    text, finish = "", None
    for ev in c.completions.create(stream=True, **kw):
        if ev.choices:
            text += ev.choices[0].text
            finish = ev.choices[0].finish_reason or finish
    if finish not in ("stop", "length"):
        fail(f"no finish_reason in the stream (got {finish})")
    print(text, end="")


def error(c, kind, args):
    model = os.environ.get("PLOT_HTTP_MODEL", "echo")
    want = {"notfound": openai.NotFoundError, "badrequest": openai.BadRequestError,
            "ratelimit": openai.RateLimitError}[kind]
    kw = dict(model=model, messages=msgs("hi"))
    if kind == "notfound":
        kw["model"] = args[0]
    elif kind == "badrequest":
        kw["n"] = 2
    try:
        c.chat.completions.create(**kw)
    except want as e:
        print(e.status_code, e.response.headers.get("retry-after", "-"), e.body.get("message"))
        return
    except openai.APIStatusError as e:
        fail(f"expected {want.__name__}, got {type(e).__name__} {e.status_code}: {e.body}")
    fail(f"expected {want.__name__}, the request succeeded")


def main():
    base, check, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    c = client(base)
    mx = int(args[1]) if len(args) > 1 and check != "error" else 32
    if check == "chat":
        chat(c, args[0], mx)
    elif check == "chatstream":
        chatstream(c, args[0], mx)
    elif check == "complete":
        complete(c, args[0], mx)
    elif check == "completestream":
        complete(c, args[0], mx, stream=True)
    elif check == "models":
        for m in c.models.list():
            print(m.id)
    elif check == "error":
        error(c, args[0], args[1:])
    else:
        fail(f"unknown check {check}")


if __name__ == "__main__":
    main()

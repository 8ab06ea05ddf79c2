"""Chat templates (lib/llm/tok/template.c via $PLOT_BUILD/tests/tmpl-render)
against each family's own Jinja template rendered by jinja2 the way
transformers' apply_chat_template does (trim_blocks, lstrip_blocks,
raise_exception): a 3-turn conversation with a system message, one without,
with and without the generation prompt. SmolLM2's template comes from the
shipped GGUF; the others are official templates in tests/fixtures/templates."""
import functools
import os
import subprocess

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PLOT_BUILD", os.path.join(ROOT, "build", "cc"))
TOOL = os.path.join(BUILD, "tests", "tmpl-render")
FIX = os.path.join(ROOT, "tests", "fixtures", "templates")
MODELS = os.path.join(os.environ.get("XDG_DATA_HOME") or
                      os.path.expanduser("~/.local/share"), "plot", "models")
SMOL = os.path.join(MODELS, "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA = os.path.join(MODELS, "gemma-3-270m-q4_k_m.gguf")

# name: (spec for tmpl-render, family, bos text, eos text)
TEMPLATES = {
    "smollm2": ("gguf:" + SMOL, "chatml", "<|im_start|>", "<|im_end|>"),
    "qwen2.5": ("file:" + os.path.join(FIX, "qwen2.5.jinja"), "chatml", "", "<|im_end|>"),
    "llama3": ("file:" + os.path.join(FIX, "llama3.jinja"), "llama3", "<|begin_of_text|>",
               "<|eot_id|>"),
    "llama3.2": ("file:" + os.path.join(FIX, "llama3.2.jinja"), "llama3", "<|begin_of_text|>",
                 "<|eot_id|>"),
    "gemma3": ("file:" + os.path.join(FIX, "gemma3.jinja"), "gemma", "<bos>", "<eos>"),
    "llama2": ("file:" + os.path.join(FIX, "llama2.jinja"), "llama2", "<s>", "</s>"),
    "mistral": ("file:" + os.path.join(FIX, "mistral.jinja"), "mistral", "<s>", "</s>"),
}

CONVERSATIONS = {
    "system_3turn": [
        {"role": "system", "content": "You are a terse assistant.  "},
        {"role": "user", "content": "  Hello there!\nHow are you? "},
        {"role": "assistant", "content": " I'm fine, thanks.\n"},
        {"role": "user", "content": "What is 2+2? Answer briefly.\t\u3000"},
    ],
    "no_system": [
        {"role": "user", "content": "Bonjour \u00e0 tous \U0001F600"},
        {"role": "assistant", "content": "Salut!"},
        {"role": "user", "content": "<|im_start|> is text here\n\n"},
    ],
    "bad_order": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
    ],
}


@functools.lru_cache(maxsize=None)
def gguf_template(path):
    from gguf import GGUFReader
    f = GGUFReader(path).fields["tokenizer.chat_template"]
    return bytes(f.parts[f.data[0]]).decode()


def jinja_source(name):
    spec = TEMPLATES[name][0]
    if spec.startswith("gguf:"):
        if not os.path.exists(SMOL):
            pytest.skip(f"{SMOL} not installed (run make models)")
        return gguf_template(SMOL)
    with open(spec[5:]) as fp:
        return fp.read()


def jinja_render(name, messages, gen):
    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    _, _, bos, eos = TEMPLATES[name]
    return env.from_string(jinja_source(name)).render(
        messages=messages, bos_token=bos, eos_token=eos, add_generation_prompt=gen)


def ours(name, messages, gen):
    spec, _, bos, eos = TEMPLATES[name]
    data = b"".join(m["role"].encode() + b"\0" + m["content"].encode() + b"\0" for m in messages)
    return subprocess.run([TOOL, "render", spec, bos, eos, str(int(gen))], input=data,
                          capture_output=True)


@pytest.mark.parametrize("gen", [True, False])
@pytest.mark.parametrize("conv", sorted(CONVERSATIONS))
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_render_matches_jinja(name, conv, gen):
    messages = CONVERSATIONS[conv]
    try:
        want = jinja_render(name, messages, gen)
    except jinja2.exceptions.TemplateError as e:
        got = ours(name, messages, gen)
        assert got.returncode == 1, f"jinja raised {e!r}, ours rendered {got.stdout!r}"
        assert got.stderr.startswith(b"tmpl-render: message ")
        return
    got = ours(name, messages, gen)
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout.decode() == want


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_detects_family(name):
    if TEMPLATES[name][0].startswith("gguf:"):
        jinja_source(name)  # skips without the model
    out = subprocess.run([TOOL, "detect", TEMPLATES[name][0]], capture_output=True, check=True)
    assert out.stdout.decode().strip() == TEMPLATES[name][1]


def test_unknown_template_is_an_error(tmp_path):
    p = tmp_path / "t.jinja"
    p.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    out = subprocess.run([TOOL, "detect", f"file:{p}"], capture_output=True)
    assert out.returncode == 1
    assert b"unknown chat template" in out.stderr


def test_raw_family_passes_the_prompt_through():
    text = "  exactly this <|im_start|>\n"
    out = subprocess.run([TOOL, "render", "family:raw", "<s>", "</s>", "1"],
                         input=b"user\0" + text.encode() + b"\0", capture_output=True, check=True)
    assert out.stdout.decode() == text


def test_gemma_gguf_without_template_gets_gemma_family():
    if not os.path.exists(GEMMA):
        pytest.skip(f"{GEMMA} not installed (run make models)")
    out = subprocess.run([TOOL, "detect", "gguf:" + GEMMA], capture_output=True, check=True)
    assert out.stdout.decode().strip() == "gemma"

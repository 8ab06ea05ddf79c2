"""Texts the tokenizer tests share (test_tok.py, peer_tok.py): English and
other scripts, digits, whitespace runs, emoji, code, and special-token
strings, each alone and all joined into one text."""

TEXTS = {
    "english": "Hello world! I'm sure you'll see they've done it, isn't it? DON'T SHOUT. "
               "She'd said we're fine; it's 'quoted' and \u2018curly\u2019 don\u2019t.",
    "contractions": "'Tis 'twas I'LLx y'all 'Sup we'REady O'Neil rock'n'roll it'sX 'DDay 12'34",
    "cjk": "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8"
           "\u3001\u30ab\u30bf\u30ab\u30ca\u3002\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4.",
    "cyrillic": "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445 "
                "\u043c\u044f\u0433\u043a\u0438\u0445 \u0444\u0440\u0430\u043d\u0446\u0443\u0437\u0441\u043a"
                "\u0438\u0445 \u0431\u0443\u043b\u043e\u043a, \u0434\u0430 \u0432\u044b\u043f\u0435\u0439 "
                "\u0447\u0430\u044e. \u041f\u0420\u0418\u0412\u0415\u0422!",
    "arabic": "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645\u060c "
              "\u0647\u0630\u0627 \u0627\u062e\u062a\u0628\u0627\u0631 \u0661\u0662\u0663.",
    "digits": "1 12 123 1234 12345 1234567 3.14159 -42 +7 1,000,000 0x1F 2024-11-22 "
              "\u0663\u0664\u0665 \u2460\u2461 \u00bd 10\u00b3",
    "whitespace": "a  b   c\t\td\n\ne\r\nf \n g   \n\n\n  h\t \t i\u00a0j\u3000k"
                  "    four   \n   \t\n\n\n\n\n\n\n\n\nend   ",
    "leading": "   three leading spaces and trailing  ",
    "emoji": "\U0001F600 \U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467 "
             "\U0001F1E9\U0001F1EA \u2764\ufe0f\U0001F525\U0001F525 ok\U0001F44Cok",
    "code": "def f(x):\n    return x**2 + 1  # square\n\n\nint main(void) {\n\tprintf(\"%d\\n\", "
            "a[i] >> 2);\n\treturn 0; // done\n}\n<div class=\"x\">&amp;</div> $HOME ~/a|b^c",
    "accents": "caf\u00e9 na\u00efve e\u0301 \u00c5ngstr\u00f6m \u1e9e stra\u00dfe \u0130stanbul",
    "specials": "<|im_start|>user\nHello<|im_end|>\n<|endoftext|><start_of_turn>model\nHi"
                "<end_of_turn>\n<bos><eos><pad><unk><unused0>[multimodal]<reponame><|im_start|>x",
    "mixed": "Tom's \u00abquote\u00bb \u2014 \u2116 5: \u03b1\u03b2\u03b3 \u05e9\u05dc\u05d5\u05dd "
             "\u0928\u092e\u0938\u094d\u0924\u0947 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "single_space": " ",
    "empty": "",
}
TEXTS["all"] = "\n".join(v for k, v in TEXTS.items() if k not in ("single_space", "empty"))

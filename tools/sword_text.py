#!/usr/bin/env python3
"""Plain text from a SWORD module's export (mod2imp's output on stdin), as blank-line separated documents on stdout.

    mod2imp MHCC | tools/sword_text.py --documents paragraphs > mhcc.txt
    mod2imp engWEB2015eb | tools/sword_text.py --documents chapters > web.txt

mod2imp prints each entry as a "$$$<key>" line (a verse such as "Genesis 1:1", or a heading) followed by its OSIS
markup. This keeps the words and drops the markup: footnotes (<note>...</note>) go entirely, every other tag is
removed, whitespace is collapsed; a fragment whose tag is cut off is dropped. --documents chapters makes one document per chapter (a Bible: the verses of
"Book C:V" keys joined); --documents paragraphs one per OSIS paragraph (a commentary, whose entries repeat the same
paragraphs under every verse they cover: each paragraph is kept once, and paragraphs under 40 characters, headings
such as "Verses 6-20", are dropped). Standard library only; used by scripts/make_long_corpus.sh.
"""
import argparse
import re
import sys

NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)
PARAGRAPH_BREAK = re.compile(r'<div\b[^>]*type="x-p"[^>]*/>')
TAG = re.compile(r"<[^>]+>")
SPACE_BEFORE_PUNCTUATION = re.compile(r" +([,.;:!?’”)])")
SPACE_AFTER_OPENING = re.compile(r"([“‘(]) +")
VERSE_KEY = re.compile(r"^(.+) (\d+):(\d+)$")
MIN_PARAGRAPH = 40


def words(markup):
    """The text of an OSIS fragment: no notes, no tags, single spaces; "" when a tag is cut off (a few entries of
    the modules end inside a tag)."""
    text = TAG.sub(" ", NOTE.sub(" ", markup))
    if "<" in text or ">" in text:
        return ""
    text = SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(text.split()))
    return SPACE_AFTER_OPENING.sub(r"\1", text)


def entries(lines):
    """(key, markup) for each "$$$key" entry of mod2imp's output."""
    key, body = None, []
    for line in lines:
        if line.startswith("$$$"):
            if key is not None:
                yield key, "".join(body)
            key, body = line[3:].strip(), []
        else:
            body.append(line)
    if key is not None:
        yield key, "".join(body)


def chapters(lines):
    """One document per "Book C": its verses (C:V with V >= 1) joined with spaces, in order of appearance."""
    documents, current, chapter = [], [], None
    for key, markup in entries(lines):
        match = VERSE_KEY.match(key)
        if not match or match.group(3) == "0":
            continue
        if (match.group(1), match.group(2)) != chapter:
            if current:
                documents.append(" ".join(current))
            current, chapter = [], (match.group(1), match.group(2))
        verse = words(markup)
        if verse:
            current.append(verse)
    if current:
        documents.append(" ".join(current))
    return documents


def paragraphs(lines):
    """One document per distinct paragraph of at least MIN_PARAGRAPH characters, in order of first appearance."""
    seen, documents = set(), []
    for _, markup in entries(lines):
        for piece in PARAGRAPH_BREAK.split(markup):
            text = words(piece)
            if len(text) >= MIN_PARAGRAPH and text not in seen:
                seen.add(text)
                documents.append(text)
    return documents


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", choices=["chapters", "paragraphs"], required=True)
    args = parser.parse_args()
    lines = sys.stdin.read().splitlines(keepends=True)
    documents = chapters(lines) if args.documents == "chapters" else paragraphs(lines)
    if not documents:
        sys.exit("sword_text: no text in the input (is it mod2imp's output?)")
    sys.stdout.write("\n\n".join(documents) + "\n")
    print(f"sword_text: {len(documents)} documents, {sum(len(d.split()) for d in documents)} words", file=sys.stderr)


if __name__ == "__main__":
    main()

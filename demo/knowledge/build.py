#!/usr/bin/env python3
"""Builds the demo's knowledge base: sections of PostgreSQL's manual about what a SaaS team asks
its database (authentication, backups, vacuum, JSON, indexes, text search, row security), their
chunks' embeddings and a few questions' embeddings, small enough to ship in the repository so
that scripts/demo.sh needs neither the network nor the model.

usage: demo/knowledge/build.py [--debian-root DIR] [--cache DIR]

The manual comes from the real-text benchmark's download (bench/search_realtext.sh small
prepare fills PLATFORM_BENCH_CACHE, default /var/cache/platform-bench), and so do the model
and its vector cache: run it with PYTHONPATH=$PLATFORM_BENCH_CACHE/python. The chunks are what
chunk_text(content, 1000, 100) returns (bench/realtext/build.py's copy, which the benchmark
checks against the extension; the demo checks again and stops if one has no vector).

Writes beside this file:
  documents.jsonl  {"title", "section", "content"} per document
  chunks.tsv       md5 of a chunk's text, TAB, its 384 components as a real[] literal
  questions.tsv    a question, TAB, its embedding as a real[] literal
"""
import argparse
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REALTEXT = os.path.join(HERE, "..", "..", "bench", "realtext")
sys.path.insert(0, REALTEXT)
import build  # noqa: E402  (bench/realtext/build.py: chunk_text)
import embed  # noqa: E402  (the vector cache)
import sources  # noqa: E402

# Whole pages, or the sections of a page given by number; long sections are left out to keep the
# shipped vectors small.
SECTIONS = {
    "auth-password.html": None,
    "client-authentication-problems.html": None,
    "backup-dump.html": None,
    "continuous-archiving.html": {"26.3", "26.3.2", "26.3.5", "26.3.7"},
    "routine-vacuuming.html": {"25.1", "25.1.1", "25.1.2", "25.1.3", "25.1.4"},
    "datatype-json.html": {"8.14.1", "8.14.2", "8.14.3", "8.14.4"},
    "indexes-types.html": None,
    "textsearch-intro.html": None,
    "mvcc-intro.html": None,
    "ddl-rowsecurity.html": None,
}

# Asked in other words than the manual's: what the demo shows hybrid_search answering.
QUESTIONS = [
    "How can I put my database back the way it was yesterday afternoon?",
    "My table keeps growing on disk even though we delete old rows",
    "Which login method avoids sending passwords in clear text?",
    "How do I make lookups inside a jsonb column fast?",
    "How can each customer only see their own rows?",
]


def vector_literal(vector):
    return "{" + ",".join(f"{x:.5f}" for x in vector) + "}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cache_root = os.environ.get("PLATFORM_BENCH_CACHE", "/var/cache/platform-bench")
    parser.add_argument("--debian-root", default=f"{cache_root}/debian/root")
    parser.add_argument("--cache", default=f"{cache_root}/embeddings")
    args = parser.parse_args()

    documents = []
    for section in sources.postgres_manual(args.debian_root):
        wanted = SECTIONS.get(section["page"], ())
        if wanted is None or (wanted and section["number"] in wanted):
            documents.append({"title": section["title"], "section": section["number"],
                              "content": section["body"]})
    chunks = [c for d in documents for c in build.chunk_text(d["content"])]

    cache = embed.VectorCache(args.cache)
    embed.embed_missing(cache, chunks, "chunks")
    embed.embed_missing(cache, QUESTIONS, "questions")

    with open(os.path.join(HERE, "documents.jsonl"), "w") as f:
        for document in documents:
            f.write(json.dumps(document, ensure_ascii=False) + "\n")
    with open(os.path.join(HERE, "chunks.tsv"), "w") as f:
        for chunk in dict.fromkeys(chunks):
            digest = hashlib.md5(chunk.encode()).hexdigest()
            f.write(f"{digest}\t{vector_literal(cache[embed.text_key(chunk)])}\n")
    with open(os.path.join(HERE, "questions.tsv"), "w") as f:
        for question in QUESTIONS:
            f.write(f"{question}\t{vector_literal(cache[embed.text_key(question)])}\n")
    print(f"{len(documents)} documents, {len(chunks)} chunks, {len(QUESTIONS)} questions")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the real-text benchmark's data: tenants, their documents cut into chunks, known-item
queries with a fixed tuning / held-out split, and the rare-terms probes. Standard library only;
the same sources, size and seed give the same files.

usage: build.py --debian-root DIR --apt-lists DIR --debs DIR --size small|large --seed N --out DIR

Writes into OUT:
  tenants.jsonl    {"tenant", "rank", "collection", "documents", "chunks"}, largest first
  documents.jsonl  {"tenant", "document", "title", "category", "content", "chunks": [text, ...]}
  queries.jsonl    {"id", "tenant", "text", "target", "kind", "verbatim", "split"[, "embed_text"]}
  manifest.json    what the files were built from, and their counts

Every line of documents.jsonl and queries.jsonl names its tenant, so a smaller benchmark can be
cut by keeping some tenants' lines (and the matching rows of the embedding files).
"""
import argparse
import collections
import glob
import hashlib
import json
import os
import random
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sources  # noqa: E402

CHUNK_SIZE, CHUNK_OVERLAP = 1000, 100
ZIPF_EXPONENT = 1.0
SIZES = {
    # Each tenant is one topical collection (a part of a manual, a Debian section).
    "small": {"chunks": 15_000, "tenants": 30, "queries_per_tenant": 20, "mixed_tenants": False},
    # Not run yet. More tenants than collections: tenants share collections and so documents
    # (each tenant holds a document at most once), and a tenant larger than its collection
    # grows into the other collections, as a large customer's knowledge base mixes topics.
    # Embeddings are cached per chunk text, so a shared document is embedded once.
    "large": {"chunks": 200_000, "tenants": 100, "queries_per_tenant": 6, "mixed_tenants": True},
}

# Debian sections whose descriptions are prose about what a program does (libraries and
# metapackages mostly repeat boilerplate).
PROSE_SECTIONS = {"utils", "net", "science", "admin", "games", "text", "sound", "graphics", "math",
                  "web", "mail", "editors", "database", "video", "electronics", "hamradio", "x11",
                  "misc", "vcs", "comm", "tex", "httpd", "devel"}

# Section titles that name a kind of section, not a topic: as queries they have no one answer.
GENERIC_TITLES = {"description", "parameters", "examples", "notes", "overview", "introduction",
                  "compatibility", "see also", "synopsis", "options", "environment", "diagnostics",
                  "configuration parameters", "files", "exit status", "usage", "functions",
                  "example", "bugs", "history", "outputs", "author", "authors", "limitations",
                  "installation"}
MIN_TITLE_QUERY_CHARS = 8
MIN_INDEX_QUERY_CHARS = 4

# --- chunking: the same cuts as the extension's chunk_text(content, 1000, 100) ---------------

# Rust's char::is_whitespace (Unicode White_Space); Python's str.isspace differs on a few.
WHITESPACE = set("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
WORD, SENTENCE, PARAGRAPH = 1, 2, 3


def _boundary_before(text, at):
    previous = text[at - 1]
    following = text[at] if at < len(text) else None
    if previous == "\n" and at >= 2 and text[at - 2] == "\n":
        return PARAGRAPH
    following_is_space = following is None or following in WHITESPACE
    full_stop = previous in ".!?\u2026" and following_is_space
    if previous == "\n" or previous == "\u3002" or full_stop:
        return SENTENCE
    if previous in WHITESPACE or following_is_space:
        return WORD
    return None


def _cut_point(text, start, end):
    earliest = start + (end - start) // 2 + 1
    best = None
    for at in range(end, max(earliest, start + 1) - 1, -1):
        kind = _boundary_before(text, at)
        if kind is not None:
            if best is None or kind > best[0]:
                best = (kind, at)
            if kind == PARAGRAPH:
                break
    return end if best is None else best[1]


def _next_start(text, start, cut, overlap):
    following = max(cut - overlap, start + 1)
    if following < cut and following > 0 and text[following - 1] not in WHITESPACE:
        for i in range(following, cut):
            if text[i] in WHITESPACE:
                return i + 1
    return following


def _strip(text):
    start, end = 0, len(text)
    while start < end and text[start] in WHITESPACE:
        start += 1
    while end > start and text[end - 1] in WHITESPACE:
        end -= 1
    return text[start:end]


def chunk_text(text, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP):
    """What the extension's chunk_text returns (the loader checks it in the database)."""
    chunks, start = [], 0
    while True:
        while start < len(text) and text[start] in WHITESPACE:
            start += 1
        if start >= len(text):
            return chunks
        end = min(start + size, len(text))
        cut = end if end == len(text) else _cut_point(text, start, end)
        chunk = _strip(text[start:cut])
        if chunk:
            chunks.append(chunk)
        if cut == len(text):
            return chunks
        start = _next_start(text, start, cut, overlap)


# --- collections and tenants -----------------------------------------------------------------

def collection_of(document):
    """The topical collection a document belongs to: a part of a manual, or a Debian section."""
    if document["source"] == "pg":
        number = document["number"]
        if not number:
            is_reference = re.match(r"(sql|app|spi|ecpg)-", document["page"])
            return "pg-reference" if is_reference else "pg-misc"
        chapter = number.split(".")[0]
        if chapter.isdigit():
            # The manual's parts, by chapter (PostgreSQL 15's numbering).
            chapter = int(chapter)
            return ("pg-sql" if chapter <= 15 else "pg-admin" if chapter <= 33
                    else "pg-client" if chapter <= 37 else "pg-serverprog" if chapter <= 51
                    else "pg-internals")
        return "pg-contrib" if chapter == "F" else "pg-appendix"
    if document["source"] == "py":
        top = document["id"].split(":")[1].split("/")[0]
        return {"library": "py-library", "reference": "py-reference", "tutorial": "py-tutorial",
                "howto": "py-howto", "faq": "py-faq"}.get(top, "py-using")
    return "deb-" + (document["section"] or "misc")


def keep_distinct_debian(documents):
    """One binary package per source package, and no description shared by two packages: both
    would be near-duplicate targets that no search can tell apart."""
    opening_count = collections.Counter(d["body"][:150] for d in documents if d["source"] == "deb")
    # A source's own binary package (same name) is the one kept.
    ordered = sorted(documents, key=lambda d: (d["source"] != "deb"
                                               or d["title"] != d.get("source_package"), d["id"]))
    seen_sources, kept = set(), []
    for d in ordered:
        if d["source"] == "deb":
            if (d["section"] not in PROSE_SECTIONS or d["source_package"] in seen_sources
                    or opening_count[d["body"][:150]] > 1):
                continue
            seen_sources.add(d["source_package"])
        kept.append(d)
    return kept


def zipf_sizes(total, count):
    weights = [1 / rank ** ZIPF_EXPONENT for rank in range(1, count + 1)]
    return [round(total * w / sum(weights)) for w in weights]


def make_tenants(collections_by_name, size, seed):
    """Tenant of rank r takes the r-th largest collection (cycling when there are more tenants
    than collections) and draws documents from it at random until it holds its Zipf share; in
    a size with mixed tenants, then from the other collections, largest first, if its own is
    too small."""
    chunk_count = {name: sum(len(d["chunks"]) for d in docs) for name, docs in collections_by_name.items()}
    by_size = sorted(chunk_count, key=lambda name: (-chunk_count[name], name))
    width = len(str(size["tenants"]))
    tenants = []
    for rank, wanted in enumerate(zipf_sizes(size["chunks"], size["tenants"]), 1):
        collection = by_size[(rank - 1) % len(by_size)]
        spill_over = [c for c in by_size if c != collection] if size["mixed_tenants"] else []
        name = f"t{rank:0{width}d}-{collection}"
        rng = random.Random(f"{seed}:{name}:documents")
        documents, chunks = [], 0
        for drawn_from in [collection] + spill_over:
            pool = list(collections_by_name[drawn_from])
            rng.shuffle(pool)
            for d in pool:
                if chunks >= wanted:
                    break
                documents.append(d)
                chunks += len(d["chunks"])
            if chunks >= wanted:
                break
        if chunks < wanted:
            print(f"{name}: {chunks} chunks, short of {wanted}", file=sys.stderr)
        tenants.append({"tenant": name, "rank": rank, "collection": collection,
                        "documents": documents, "chunks": chunks})
    return tenants


# --- queries ---------------------------------------------------------------------------------

def normalised(text):
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def index_queries_by_document(debian_root, documents):
    """PostgreSQL's index entries that point into exactly one document, by that document."""
    by_anchor = {}
    for d in documents:
        if d["source"] == "pg":
            for anchor in d["anchors"]:
                by_anchor.setdefault((d["page"], anchor), d["id"])
            by_anchor.setdefault((d["page"], None), d["id"])
    by_document = collections.defaultdict(list)
    for entry, links in sources.postgres_index_entries(debian_root):
        targets = set()
        for link in links:
            page, _, anchor = link.partition("#")
            targets.add(by_anchor.get((page, anchor or None)) or by_anchor.get((page, None)))
        if len(targets) == 1 and None not in targets and len(entry) >= MIN_INDEX_QUERY_CHARS:
            by_document[targets.pop()].append(entry)
    return by_document


def query_candidates(tenant, index_queries):
    """Every (kind, query, document) the tenant could be asked, each with one right answer in
    the tenant: a package's short description, a section's title if no other section of the
    tenant has it, a question heading, or an index entry."""
    title_count = collections.Counter(normalised(d["title"]) for d in tenant["documents"])
    candidates = []
    for d in tenant["documents"]:
        if d["source"] == "deb":
            candidates.append(("desc", d["short"], d))
        else:
            title = d["title"]
            key = normalised(title)
            if title_count[key] == 1 and key not in GENERIC_TITLES and len(title) >= MIN_TITLE_QUERY_CHARS:
                candidates.append(("faq" if title.endswith("?") else "title", title, d))
        for entry in index_queries.get(d["id"], []):
            candidates.append(("index", entry, d))
    return candidates


def pick_queries(tenant, candidates, count, seed):
    """`count` queries, taking the kinds in turn so that each tenant gets a mix, and never two
    for the same document."""
    rng = random.Random(f"{seed}:{tenant['tenant']}:queries")
    rng.shuffle(candidates)
    by_kind = collections.defaultdict(list)
    for candidate in candidates:
        by_kind[candidate[0]].append(candidate)
    picked, targets = [], set()
    while len(picked) < count and any(by_kind.values()):
        for kind in sorted(by_kind):
            while by_kind[kind]:
                candidate = by_kind[kind].pop()
                if candidate[2]["id"] not in targets:
                    picked.append(candidate)
                    targets.add(candidate[2]["id"])
                    break
            if len(picked) >= count:
                break
    return picked


def split_of(query_id, seed):
    """Tuning or held-out, from a hash: fixed for a query whatever else changes."""
    digest = hashlib.sha1(f"{seed}:{query_id}".encode()).hexdigest()
    return "heldout" if int(digest, 16) % 2 else "tune"


# --- rare-terms probes -----------------------------------------------------------------------

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "bex", "dor", "fu", "gri", "hax",
             "jul", "kre", "lum", "mox", "nif", "pra", "quo", "ris", "sny", "tev", "ulk", "vra",
             "wem", "xan", "yor", "zed"]
PROBE_QUERY_EMBEDDED_AS = "a recipe for slow-cooked vegetable soup with lentils and thyme"


def invented_words(vocabulary, rng, count):
    words = []
    while len(words) < count:
        word = "".join(rng.choice(SYLLABLES) for _ in range(4))
        if word not in vocabulary and word not in words:
            words.append(word)
    return words


def probe(tenant, words):
    """A document holding two invented words once each, in ordinary prose; its query is those
    two words, embedded as an unrelated sentence, so only the keyword side can find it."""
    first, second = words
    content = (f"The {first} setting controls how often the {second} helper retries a request "
               "that failed before it reports an error to the caller. Set it in the "
               "configuration file and restart the service for the change to take effect; "
               "the default suits most installations.")
    document = {"id": f"probe:{tenant['tenant']}", "title": "Retrying failed requests",
                "body": content, "chunks": chunk_text(content)}
    query = {"kind": "probe", "text": f"{first} {second}", "embed_text": PROBE_QUERY_EMBEDDED_AS}
    return document, query


# --- output ----------------------------------------------------------------------------------

def package_versions(debs_dir):
    versions = {}
    for path in sorted(glob.glob(f"{debs_dir}/*.deb")):
        fields = subprocess.run(["dpkg-deb", "-f", path, "Package", "Version"], capture_output=True,
                                text=True, check=True).stdout
        parsed = dict(re.findall(r"^(\w+): (.*)$", fields, re.M))
        versions[parsed["Package"]] = parsed["Version"]
    return versions


def lists_date(lists_dir):
    release = glob.glob(f"{lists_dir}/*_dists_{sources.debian_codename()}_InRelease")
    if not release:
        return None
    with open(release[0], encoding="utf-8", errors="replace") as f:
        found = re.search(r"^Date: (.*)$", f.read(), re.M)
    return found.group(1) if found else None


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--debian-root", required=True, help="where the doc packages were extracted")
    parser.add_argument("--apt-lists", required=True, help="the private apt lists directory")
    parser.add_argument("--debs", required=True, help="the downloaded .deb files (for their versions)")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    size = SIZES[args.size]

    documents = (list(sources.postgres_manual(args.debian_root))
                 + list(sources.python_docs(args.debian_root))
                 + list(sources.debian_descriptions(args.apt_lists)))
    read_by_source = collections.Counter(d["source"] for d in documents)
    documents = keep_distinct_debian(documents)
    for d in documents:
        d["chunks"] = chunk_text(d["body"])
    by_collection = collections.defaultdict(list)
    for d in documents:
        by_collection[collection_of(d)].append(d)
    tenants = make_tenants(by_collection, size, args.seed)

    index_queries = index_queries_by_document(args.debian_root, documents)
    vocabulary = {w for d in documents for w in re.findall(r"\w+", (d["title"] + " " + d["body"]).lower())}
    probe_rng = random.Random(f"{args.seed}:probes")
    probed = {tenants[0]["tenant"], tenants[-1]["tenant"]}

    os.makedirs(args.out, exist_ok=True)
    queries = []
    with open(f"{args.out}/documents.jsonl", "w") as out:
        for tenant in tenants:
            for d in tenant["documents"]:
                out.write(json.dumps({"tenant": tenant["tenant"], "document": d["id"], "title": d["title"],
                                      "category": tenant["collection"], "content": d["body"],
                                      "chunks": d["chunks"]}, ensure_ascii=False) + "\n")
            picked = pick_queries(tenant, query_candidates(tenant, index_queries),
                                  size["queries_per_tenant"], args.seed)
            for kind, text, d in picked:
                query_id = hashlib.sha1(f"{tenant['tenant']}|{text}|{d['id']}".encode()).hexdigest()[:12]
                queries.append({"id": query_id, "tenant": tenant["tenant"], "text": text, "target": d["id"],
                                "kind": kind, "verbatim": normalised(text) in normalised(d["body"]),
                                "split": split_of(query_id, args.seed)})
            if tenant["tenant"] in probed:
                document, query = probe(tenant, invented_words(vocabulary, probe_rng, 2))
                out.write(json.dumps({"tenant": tenant["tenant"], "document": document["id"],
                                      "title": document["title"], "category": "probe",
                                      "content": document["body"], "chunks": document["chunks"]}) + "\n")
                tenant["chunks"] += len(document["chunks"])
                queries.append({"id": f"probe-{tenant['tenant']}", "tenant": tenant["tenant"],
                                "target": document["id"], "verbatim": True, "split": "probe", **query})
    with open(f"{args.out}/queries.jsonl", "w") as out:
        for q in queries:
            out.write(json.dumps(q, ensure_ascii=False) + "\n")
    with open(f"{args.out}/tenants.jsonl", "w") as out:
        for t in tenants:
            out.write(json.dumps({"tenant": t["tenant"], "rank": t["rank"], "collection": t["collection"],
                                  "documents": len(t["documents"]) + (t["tenant"] in probed),
                                  "chunks": t["chunks"]}) + "\n")

    measured = [q for q in queries if q["split"] != "probe"]
    manifest = {
        "size": args.size, "seed": args.seed, "chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP,
        "packages": package_versions(args.debs), "apt_lists_date": lists_date(args.apt_lists),
        "documents_read": dict(read_by_source),
        "tenants": len(tenants),
        "documents": sum(len(t["documents"]) for t in tenants) + len(probed),
        "chunks": sum(t["chunks"] for t in tenants),
        "queries": len(measured),
        "queries_by_split": dict(collections.Counter(q["split"] for q in measured)),
        "queries_by_kind": dict(collections.Counter(q["kind"] for q in measured)),
        "verbatim_queries": sum(q["verbatim"] for q in measured),
        "probes": len(probed),
        "sha256": {name: file_sha256(f"{args.out}/{name}")
                   for name in ("tenants.jsonl", "documents.jsonl", "queries.jsonl")},
    }
    with open(f"{args.out}/manifest.json", "w") as out:
        json.dump(manifest, out, indent=1)
    print(f"{manifest['tenants']} tenants, {manifest['documents']} documents, {manifest['chunks']} chunks, "
          f"{manifest['queries']} queries {manifest['queries_by_split']} "
          f"{manifest['queries_by_kind']}, {manifest['verbatim_queries']} verbatim; "
          f"largest tenant {tenants[0]['tenant']} ({tenants[0]['chunks']} chunks), "
          f"smallest {tenants[-1]['tenant']} ({tenants[-1]['chunks']})")


if __name__ == "__main__":
    main()

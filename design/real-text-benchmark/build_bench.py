#!/usr/bin/env python3
"""Tenants (Zipf sizes), chunks and known-item queries from corpus_all.jsonl. Stdlib only.

usage: build_bench.py corpus_all.jsonl OUTDIR [total_chunks=15000] [seed=11]
writes OUTDIR/docs.jsonl  {tenant, rank, doc, title, body, chunks[]}
       OUTDIR/queries.jsonl {qid, tenant, query, target, type, verbatim, split}
"""
import collections, hashlib, json, os, random, re, sys

src, out = sys.argv[1], sys.argv[2]
TOTAL = int(sys.argv[3]) if len(sys.argv) > 3 else 15000
SEED = int(sys.argv[4]) if len(sys.argv) > 4 else 11
N_TENANTS, ZIPF_S, Q_PER_TENANT = 30, 1.0, 20
os.makedirs(out, exist_ok=True)


def chunk(text, size=1000, overlap=100):
    """Approximation of chunk_text(content, 1000, 100): end at a paragraph break, else a
    sentence end, else a space; next chunk starts ~overlap chars back at a word start."""
    out, i, n = [], 0, len(text)
    while i < n:
        if n - i <= size:
            out.append(text[i:].strip()); break
        w = text[i:i + size]
        cut = max(w.rfind("\n\n"), -1)
        if cut < size // 2:
            m = [x.end() for x in re.finditer(r"[.!?][\"')\]]?\s", w)]
            cut = m[-1] if m and m[-1] >= size // 2 else w.rfind(" ")
        if cut <= 0:
            cut = size
        out.append(text[i:i + cut].strip())
        j = i + cut - overlap
        while j > i and j < n and not text[j - 1].isspace():
            j += 1
        i = max(j, i + 1) if j < i + cut else i + cut
    return [c for c in out if c]


def collection_of(d):
    if d["source"] == "pg":
        n = d["num"]
        if not n:
            return "pg-reference" if re.match(r"(sql|app|spi|ecpg)-", d["file"]) else "pg-misc"
        head = n.split(".")[0]
        if head.isdigit():
            c = int(head)
            return ("pg-sql" if c <= 15 else "pg-admin" if c <= 33 else "pg-client" if c <= 37
                    else "pg-serverprog" if c <= 51 else "pg-internals")
        return "pg-contrib" if head == "F" else "pg-appendix"
    if d["source"] == "py":
        top = d["id"].split(":")[1].split("/")[0]
        return {"library": "py-library", "reference": "py-reference", "tutorial": "py-tutorial",
                "howto": "py-howto", "faq": "py-faq"}.get(top, "py-using")
    return "deb-" + (d["section"] or "misc")


PROSE_DEB = {"utils", "net", "science", "admin", "games", "text", "sound", "graphics", "math",
             "web", "mail", "editors", "database", "video", "electronics", "hamradio", "x11",
             "misc", "vcs", "comm", "tex", "httpd", "devel"}

docs = [json.loads(l) for l in open(src)]
# Debian: one binary package per source package, and no description shared by two packages
seen_src, first150 = set(), collections.Counter(d["body"][:150] for d in docs if d["source"] == "deb")
keep = []
for d in sorted(docs, key=lambda d: (d["source"] != "deb" or d["title"] != d.get("srcpkg"), d["id"])):
    if d["source"] == "deb":
        if d["section"] not in PROSE_DEB or d["srcpkg"] in seen_src or first150[d["body"][:150]] > 1:
            continue
        seen_src.add(d["srcpkg"])
    d["chunks"] = chunk(d["body"])
    keep.append(d)

coll = collections.defaultdict(list)
for d in keep:
    coll[collection_of(d)].append(d)
sizes = {k: sum(len(d["chunks"]) for d in v) for k, v in coll.items()}

H = sum(1 / r ** ZIPF_S for r in range(1, N_TENANTS + 1))
target = [round(TOTAL / r ** ZIPF_S / H) for r in range(1, N_TENANTS + 1)]
rng = random.Random(SEED)
names = [k for k, _ in sorted(sizes.items(), key=lambda kv: -kv[1])][:N_TENANTS]
# biggest collections take the biggest tenants; shuffle within a window so the top is mixed
tenants = []
for rank, (name, want) in enumerate(zip(names, target), 1):
    pool = coll[name][:]
    rng.shuffle(pool)
    got, n = [], 0
    for d in pool:
        if n >= want:
            break
        got.append(d); n += len(d["chunks"])
    tenants.append((rank, name, got, n))

STOP_TITLES = {"description", "parameters", "examples", "notes", "overview", "introduction",
               "compatibility", "see also", "synopsis", "options", "environment", "diagnostics",
               "configuration parameters", "files", "exit status", "usage", "functions", "example",
               "bugs", "history", "outputs", "author", "authors", "limitations", "installation"}


def norm(s):
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", s.lower())).strip()


def pg_index():
    """PostgreSQL's back-of-book index: term (+ subterm) -> file#anchor, single-target entries only."""
    import xml.etree.ElementTree as ET
    from corpus import PG, NS
    root = ET.parse(f"{PG}/bookindex.html").getroot()
    ent = []
    tops = [dl for div in root.iter(NS + "div") if (div.get("class") or "") == "indexdiv"
            for dl in div if dl.tag == NS + "dl"]
    for dl in tops:

        def walk(dl, prefix):
            kids = list(dl)
            for i, dt in enumerate(kids):
                if dt.tag != NS + "dt":
                    continue
                term = (dt.text or "").strip().rstrip(",").strip()
                links = [a.get("href") for a in dt.iter(NS + "a") if (a.get("class") or "") == "indexterm"]
                q = (prefix + " " + term).strip()
                if links:
                    ent.append((q, links))
                if i + 1 < len(kids) and kids[i + 1].tag == NS + "dd":
                    for sub in kids[i + 1].iter(NS + "dl"):
                        walk(sub, term); break
        walk(dl, "")
    return ent


anchor_doc = {}
for d in keep:
    if d["source"] == "pg":
        for a in d["ids"]:
            anchor_doc.setdefault((d["file"], a), d["id"])
        anchor_doc.setdefault((d["file"], None), d["id"])
idx = []
for q, links in pg_index():
    tg = set()
    for h in links:
        f, _, a = h.partition("#")
        tg.add(anchor_doc.get((f, a or None)) or anchor_doc.get((f, None)))
    if len(tg) == 1 and None not in tg and len(q) >= 4:
        idx.append((q, tg.pop()))
idx_by_doc = collections.defaultdict(list)
for q, t in idx:
    idx_by_doc[t].append(q)

queries = []
with open(f"{out}/docs.jsonl", "w") as fd:
    for rank, name, got, n in tenants:
        tid = f"t{rank:02d}-{name}"
        titles = collections.Counter(norm(d["title"]) for d in got)
        cands = []
        for d in got:
            fd.write(json.dumps({"tenant": tid, "rank": rank, "doc": d["id"], "title": d["title"],
                                 "body": d["body"], "chunks": d["chunks"]}) + "\n")
            text = norm(d["title"] + " " + d["body"])
            if d["source"] == "deb":
                cands.append(("desc", d["short"], d))
            else:
                t = d["title"]
                if titles[norm(t)] == 1 and norm(t) not in STOP_TITLES and len(t) >= 8:
                    cands.append(("faq" if t.endswith("?") else "title", t, d))
            for q in idx_by_doc.get(d["id"], []):
                cands.append(("index", q, d))
        rng.shuffle(cands)
        # prefer a mix of types: round-robin over the types present
        by = collections.defaultdict(list)
        for c in cands:
            by[c[0]].append(c)
        picked, used = [], set()
        while len(picked) < Q_PER_TENANT and any(by.values()):
            for ty in sorted(by):
                while by[ty]:
                    c = by[ty].pop()
                    if c[2]["id"] not in used:
                        picked.append(c); used.add(c[2]["id"]); break
                if len(picked) >= Q_PER_TENANT:
                    break
        for ty, q, d in picked:
            qid = hashlib.sha1(f"{tid}|{q}|{d['id']}".encode()).hexdigest()[:12]
            split = "heldout" if int(hashlib.sha1(f"{SEED}:{qid}".encode()).hexdigest(), 16) % 2 else "tune"
            verb = norm(q) in norm(d["body"])  # the query as a phrase in the indexed chunk text
            queries.append({"qid": qid, "tenant": tid, "query": q, "target": d["id"], "type": ty,
                            "verbatim": verb, "split": split})
with open(f"{out}/queries.jsonl", "w") as fq:
    for q in queries:
        fq.write(json.dumps(q) + "\n")

print("tenant sizes (chunks):", [(t[1], t[3]) for t in tenants])
print("total docs", sum(len(t[2]) for t in tenants), "chunks", sum(t[3] for t in tenants))
c = collections.Counter((q["type"], q["verbatim"]) for q in queries)
print("queries", len(queries), dict(c), collections.Counter(q["split"] for q in queries))

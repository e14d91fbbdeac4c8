#!/usr/bin/env python3
"""Build a real-text corpus (JSONL) from Debian documentation packages, stdlib only.

Sources (extracted with `dpkg-deb -x` under $X, default /opt/platform/research/debs/x):
  pg   postgresql-doc-15   DocBook XHTML, one document per leaf section (sect1..sect4, refentry)
  py   python3.11-doc      reST sources (_sources/*.rst.txt), one document per heading
  deb  Translation-en      package long descriptions, title = package name, query = short description

Each document: {"id","source","title","body","ids"(pg anchors)}.
"""
import glob, gzip, json, os, re, sys, xml.etree.ElementTree as ET

X = os.environ.get("X", "/opt/platform/research/debs/x")
NS = "{http://www.w3.org/1999/xhtml}"
PG = f"{X}/postgresql-doc-15/usr/share/doc/postgresql-doc-15/html"
PY = f"{X}/python3.11-doc/usr/share/doc/python3.11/html/_sources"

SECTION = re.compile(r"^(sect[1-5]|refentry|chapter|preface|appendix|part|reference|simplesect)$")
SKIP = {"titlepage", "toc", "navheader", "navfooter", "refnamediv", "list-of-tables",
        "list-of-examples", "list-of-figures"}
BLOCK = {"p", "pre", "dt", "dd", "li", "tr", "h1", "h2", "h3", "h4", "h5", "table", "div", "blockquote"}


def ws(s):
    return re.sub(r"[ \t\r\f\v]+", " ", s)


def text_of(e, out, top=True):
    """Text of e without nested sections; paragraphs separated by blank lines."""
    tag = e.tag.replace(NS, "")
    cls = e.get("class") or ""
    if not top and (SECTION.match(cls) or cls in SKIP):
        return
    if tag in BLOCK:
        out.append("\n\n")
    if e.text:
        out.append(e.text if tag == "pre" else ws(e.text))
    for ch in e:
        text_of(ch, out, False)
        if ch.tail:
            out.append(ch.tail if tag == "pre" else ws(ch.tail))
    if tag in ("td", "th"):
        out.append(" | ")


def clean(parts):
    t = "".join(parts)
    t = re.sub(r"\n[ \t]+", "\n", t)
    t = re.sub(r"\n{3,}", "\n\n", t)
    return t.strip()


def anchors(e, acc, top=True):
    cls = e.get("class") or ""
    if not top and (SECTION.match(cls)):
        return
    if e.get("id"):
        acc.append(e.get("id"))
    for ch in e:
        anchors(ch, acc, False)


def title_of(sec):
    for h in sec.iter():
        tag = h.tag.replace(NS, "")
        if tag in ("h1", "h2", "h3", "h4", "h5") and (h.get("class") or "") == "title":
            t = ws("".join(h.itertext())).strip()
            return t
        if tag == "h1" and (h.get("class") or "") == "refentrytitle":
            break
    # refentry: name + purpose
    nd = [d for d in sec.iter() if (d.get("class") or "") == "refnamediv"]
    if nd:
        return ws("".join(nd[0].itertext())).replace("Name ", "", 1).strip()
    return ""


def pg_docs():
    for f in sorted(glob.glob(f"{PG}/*.html")):
        name = os.path.basename(f)
        if name in ("bookindex.html", "index.html") or name.startswith("release-"):
            continue
        root = ET.parse(f).getroot()
        for sec in root.iter():
            cls = sec.get("class") or ""
            if not SECTION.match(cls):
                continue
            # only sections that start in this file (the top one) or nested ones
            parts = []
            text_of(sec, parts)
            body = clean(parts)
            raw = title_of(sec)
            m = re.match(r"^(?:Chapter |Appendix )?((?:[A-Z]\.)?[0-9.]*[0-9A-Z])\.?\s+(.*)$", raw)
            num, title = (m.group(1), m.group(2)) if m and re.search(r"[0-9]|^[A-Z]$", m.group(1)) else ("", raw)
            ids = []
            anchors(sec, ids)
            if sec.get("id"):
                ids.insert(0, sec.get("id"))
            if len(body) < 200:
                continue
            sid = sec.get("id") or name
            yield {"id": f"pg:{name}#{sid}", "source": "pg", "title": title, "body": body,
                   "file": name, "num": num, "ids": ids}


HEAD = re.compile(r"^(=+|-+|\*+|~+|\^+|\"+|#+)\s*$")


KEEP_ARG = {"function", "method", "class", "exception", "attribute", "data", "decorator", "opcode",
            "cmdoption", "option", "envvar", "describe", "pdbcommand", "classmethod", "staticmethod",
            "coroutinefunction", "coroutinemethod", "abstractmethod", "decoratormethod", "program"}
LABEL = {"note": "Note:", "warning": "Warning:", "seealso": "See also:", "tip": "Tip:",
         "important": "Important:", "caution": "Caution:", "deprecated": "Deprecated since version",
         "versionadded": "New in version", "versionchanged": "Changed in version"}


def rst_text(lines):
    """reST -> plain text, good enough for search: directives' arguments kept for API entries,
    index/label/toctree/comment blocks dropped, roles unwrapped."""
    out, skip_indent = [], None
    for ln in lines:
        if skip_indent is not None:
            if not ln.strip() or (len(ln) - len(ln.lstrip())) > skip_indent:
                continue
            skip_indent = None
        m = re.match(r"^(\s*)\.\. (?:([\w:-]+)::)?\s*(.*)$", ln)
        if m:
            ind, name, arg = len(m.group(1)), m.group(2), m.group(3)
            name = (name or "").split(":")[-1]
            if name in KEEP_ARG:
                out.append(m.group(1) + arg)
            elif name in LABEL:
                out.append(m.group(1) + LABEL[name] + (" " + arg if arg else ""))
            else:  # index, toctree, _labels, comments, code-block, module, ...
                if name in ("code-block", "sourcecode", "doctest", "testcode", "productionlist"):
                    continue  # keep the (indented) code that follows
                skip_indent = ind
            continue
        if re.match(r"^\s+:[\w-]+:( .*)?$", ln):  # directive options
            continue
        out.append(ln)
    b = "\n".join(out)
    b = re.sub(r":[\w:]+:`!?~?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", b)  # roles
    b = re.sub(r"``([^`]*)``", r"\1", b)
    b = re.sub(r"`([^`<]*?)(?:\s*<[^>]*>)?`_{0,2}", r"\1", b)
    b = re.sub(r"::\s*$", ":", b, flags=re.M)
    b = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", b)
    return b.strip()


def py_docs():
    for f in sorted(glob.glob(f"{PY}/**/*.rst.txt", recursive=True)):
        rel = os.path.relpath(f, PY)
        if rel.startswith(("whatsnew/", "c-api/")) or rel in ("license.rst.txt", "contents.rst.txt"):
            continue
        lines = open(f, encoding="utf-8").read().split("\n")
        secs, cur, title = [], [], rel
        i = 0
        while i < len(lines):
            if i + 1 < len(lines) and lines[i].strip() and HEAD.match(lines[i + 1]) \
                    and len(lines[i + 1].strip()) >= len(lines[i].strip()) >= 3:
                if cur and cur[-1].strip() and HEAD.match(cur[-1]):  # overline
                    cur.pop()
                secs.append((title, cur))
                title, cur = lines[i].strip(), []
                i += 2
                continue
            cur.append(lines[i])
            i += 1
        secs.append((title, cur))
        page = secs[1][0] if len(secs) > 1 else rel
        for n, (t, body) in enumerate(secs):
            b = rst_text(body)
            if len(b) < 200:
                continue
            yield {"id": f"py:{rel}#{n}", "source": "py", "title": t, "page": page, "body": b}


def deb_meta():
    import subprocess
    raw = subprocess.run(["lz4cat", glob.glob("/var/lib/apt/lists/*bookworm_main_binary-amd64_Packages.lz4")[0]],
                         capture_output=True, text=True, check=True).stdout
    meta = {}
    for rec in raw.split("\n\n"):
        f = dict(re.findall(r"^([A-Za-z-]+): (.*)$", rec, re.M))
        if "Package" in f:
            meta[f["Package"]] = (f.get("Section", ""), f.get("Source", f["Package"]).split()[0])
    return meta


def deb_docs(path):
    import subprocess
    meta = deb_meta()
    raw = subprocess.run(["lz4cat", path], capture_output=True, text=True, check=True).stdout
    for rec in raw.split("\n\n"):
        m = re.search(r"^Package: (.+)$", rec, re.M)
        d = re.search(r"^Description-en: (.*)\n((?: .*\n?)*)", rec, re.M)
        if not m or not d:
            continue
        short = d.group(1).strip()
        long_ = "\n".join(l[1:] for l in d.group(2).rstrip("\n").split("\n"))
        long_ = re.sub(r"^\.$", "", long_, flags=re.M).strip()
        if len(long_) < 200:
            continue
        sec, src = meta.get(m.group(1), ("", m.group(1)))
        yield {"id": f"deb:{m.group(1)}", "source": "deb", "title": m.group(1), "short": short, "body": long_,
               "section": sec, "srcpkg": src}


if __name__ == "__main__":
    out = sys.argv[1]
    trans = glob.glob("/opt/platform/research/aptlists/*bookworm_main_i18n_Translation-en.lz4")[0]
    n = {}
    with open(out, "w") as fh:
        for gen in (pg_docs(), py_docs(), deb_docs(trans)):
            for d in gen:
                n[d["source"]] = n.get(d["source"], 0) + 1
                fh.write(json.dumps(d) + "\n")
    print(n)

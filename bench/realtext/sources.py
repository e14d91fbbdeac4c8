"""The real text the benchmark searches, read from Debian packages (standard library only).

Three sources, each turned into documents {"id", "source", "title", "body", ...}:

- PostgreSQL's manual (postgresql-doc-15, DocBook XHTML): one document per leaf section or
  reference page, without its nested subsections, which are documents of their own.
- Python's documentation (python3.11-doc, the reST sources under html/_sources): one document
  per heading.
- Debian's package descriptions (the Translation-en list): the long description is the body,
  the package name the title, and the short description becomes a query.

The paths are those `dpkg-deb -x` and a private `apt-get update` produce; see
bench/search_realtext.sh.
"""
import glob
import os
import re
import subprocess
import xml.etree.ElementTree as ET

XHTML = "{http://www.w3.org/1999/xhtml}"

# Shorter documents are navigation pages, stubs or headings without text.
MIN_BODY_CHARS = 200


def postgres_html_dir(debian_root):
    return f"{debian_root}/usr/share/doc/postgresql-doc-15/html"


def python_sources_dir(debian_root):
    return f"{debian_root}/usr/share/doc/python3.11/html/_sources"


def collapse_spaces(text):
    return re.sub(r"[ \t\r\f\v]+", " ", text)


# --- PostgreSQL's manual ---------------------------------------------------------------------

SECTION_CLASS = re.compile(r"^(sect[1-5]|refentry|chapter|preface|appendix|part|reference|simplesect)$")
# Page furniture that is not the section's text.
FURNITURE_CLASSES = {"titlepage", "toc", "navheader", "navfooter", "refnamediv", "list-of-tables",
                     "list-of-examples", "list-of-figures"}
# Elements after which text starts a new paragraph.
BLOCK_TAGS = {"p", "pre", "dt", "dd", "li", "tr", "h1", "h2", "h3", "h4", "h5", "table", "div",
              "blockquote"}


def _section_text(element, out, top=True):
    """Appends the text of a section, leaving out nested sections: they are documents of their
    own, and a parent holding their text would be a second target for the same query."""
    tag = element.tag.replace(XHTML, "")
    css = element.get("class") or ""
    if not top and (SECTION_CLASS.match(css) or css in FURNITURE_CLASSES):
        return
    if tag in BLOCK_TAGS:
        out.append("\n\n")
    # Code keeps its line breaks and indentation; prose is reflowed by the browser anyway.
    keep_layout = tag == "pre"
    if element.text:
        out.append(element.text if keep_layout else collapse_spaces(element.text))
    for child in element:
        _section_text(child, out, False)
        if child.tail:
            out.append(child.tail if keep_layout else collapse_spaces(child.tail))
    if tag in ("td", "th"):
        out.append(" | ")


def _tidy_paragraphs(parts):
    text = "".join(parts)
    text = re.sub(r"\n[ \t]+", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _section_anchors(element, found, top=True):
    """Every id inside a section but outside its nested sections: where the manual's index
    points to."""
    if not top and SECTION_CLASS.match(element.get("class") or ""):
        return
    if element.get("id"):
        found.append(element.get("id"))
    for child in element:
        _section_anchors(child, found, False)


def _section_title(section):
    for heading in section.iter():
        tag = heading.tag.replace(XHTML, "")
        if tag in ("h1", "h2", "h3", "h4", "h5") and (heading.get("class") or "") == "title":
            return collapse_spaces("".join(heading.itertext())).strip()
        if tag == "h1" and (heading.get("class") or "") == "refentrytitle":
            break
    # A reference page: its name and purpose ("CREATE TABLE — define a new table").
    names = [d for d in section.iter() if (d.get("class") or "") == "refnamediv"]
    if names:
        purpose = names[0].find(XHTML + "p")
        text = "".join((purpose if purpose is not None else names[0]).itertext())
        return collapse_spaces(text).strip()
    return ""


# "12.3. Controlling Text Search", "F.1. adminpack", "Chapter 5. Data Definition"
NUMBERED_TITLE = re.compile(r"^(?:Chapter |Appendix )?((?:[A-Z]\.)?[0-9.]*[0-9A-Z])\.?\s+(.*)$")


def postgres_manual(debian_root):
    html = postgres_html_dir(debian_root)
    for path in sorted(glob.glob(f"{html}/*.html")):
        page = os.path.basename(path)
        # The index is used for queries, not searched; release notes are changelogs.
        if page in ("bookindex.html", "index.html") or page.startswith("release-"):
            continue
        root = ET.parse(path).getroot()
        for section in root.iter():
            if not SECTION_CLASS.match(section.get("class") or ""):
                continue
            parts = []
            _section_text(section, parts)
            body = _tidy_paragraphs(parts)
            if len(body) < MIN_BODY_CHARS:
                continue
            raw_title = _section_title(section)
            numbered = NUMBERED_TITLE.match(raw_title)
            if numbered and re.search(r"[0-9]|^[A-Z]$", numbered.group(1)):
                number, title = numbered.group(1), numbered.group(2)
            else:
                number, title = "", raw_title
            anchors = []
            _section_anchors(section, anchors)
            if section.get("id"):
                anchors.insert(0, section.get("id"))
            section_id = section.get("id") or page
            yield {"id": f"pg:{page}#{section_id}", "source": "pg", "title": title, "body": body,
                   "page": page, "number": number, "anchors": anchors}


def postgres_index_entries(debian_root):
    """The manual's back-of-book index: (entry, links), an entry being a term or a term and a
    subterm ("pg_dump  parallel"), a link "page.html#anchor"."""
    root = ET.parse(f"{postgres_html_dir(debian_root)}/bookindex.html").getroot()
    entries = []

    def walk(term_list, parent_term):
        children = list(term_list)
        for i, term in enumerate(children):
            if term.tag != XHTML + "dt":
                continue
            name = (term.text or "").strip().rstrip(",").strip()
            links = [a.get("href") for a in term.iter(XHTML + "a")
                     if (a.get("class") or "") == "indexterm"]
            entry = f"{parent_term} {name}".strip()
            if links:
                entries.append((entry, links))
            if i + 1 < len(children) and children[i + 1].tag == XHTML + "dd":
                for sub_list in children[i + 1].iter(XHTML + "dl"):
                    walk(sub_list, name)
                    break

    for division in root.iter(XHTML + "div"):
        if (division.get("class") or "") == "indexdiv":
            for term_list in division:
                if term_list.tag == XHTML + "dl":
                    walk(term_list, "")
    return entries


# --- Python's documentation ------------------------------------------------------------------

HEADING_UNDERLINE = re.compile(r"^(=+|-+|\*+|~+|\^+|\"+|#+)\s*$")
# Directives whose argument is the text a reader looks for (a function's signature, an option).
DIRECTIVES_KEEPING_ARGUMENT = {
    "function", "method", "class", "exception", "attribute", "data", "decorator", "opcode",
    "cmdoption", "option", "envvar", "describe", "pdbcommand", "classmethod", "staticmethod",
    "coroutinefunction", "coroutinemethod", "abstractmethod", "decoratormethod", "program"}
ADMONITION_LABELS = {
    "note": "Note:", "warning": "Warning:", "seealso": "See also:", "tip": "Tip:",
    "important": "Important:", "caution": "Caution:", "deprecated": "Deprecated since version",
    "versionadded": "New in version", "versionchanged": "Changed in version"}
# Directives followed by indented code worth keeping as text.
CODE_DIRECTIVES = {"code-block", "sourcecode", "doctest", "testcode", "productionlist"}


def unwrap_roles(text):
    """reST inline markup to plain text: :func:`open`, ``code``, `link <url>`_."""
    text = re.sub(r":[\w:]+:`!?~?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    return re.sub(r"`([^`<]*?)(?:\s*<[^>]*>)?`_{0,2}", r"\1", text)


def rest_to_text(lines):
    """reST to plain text, good enough for search: API entries keep their signature, admonitions
    their label, code its lines; index, label, toctree and comment blocks are dropped."""
    out, skipping_below = [], None
    for line in lines:
        if skipping_below is not None:
            indent = len(line) - len(line.lstrip())
            if not line.strip() or indent > skipping_below:
                continue
            skipping_below = None
        directive = re.match(r"^(\s*)\.\. (?:([\w:-]+)::)?\s*(.*)$", line)
        if directive:
            indent, name, argument = directive.group(1), directive.group(2), directive.group(3)
            name = (name or "").split(":")[-1]
            if name in DIRECTIVES_KEEPING_ARGUMENT:
                out.append(indent + argument)
            elif name in ADMONITION_LABELS:
                out.append(indent + ADMONITION_LABELS[name] + (" " + argument if argument else ""))
            elif name not in CODE_DIRECTIVES:
                skipping_below = len(indent)
            continue
        if re.match(r"^\s+:[\w-]+:( .*)?$", line):  # a directive's options
            continue
        out.append(line)
    text = unwrap_roles("\n".join(out))
    text = re.sub(r"::\s*$", ":", text, flags=re.M)
    text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)
    return text.strip()


def python_docs(debian_root):
    sources = python_sources_dir(debian_root)
    for path in sorted(glob.glob(f"{sources}/**/*.rst.txt", recursive=True)):
        page = os.path.relpath(path, sources)
        # Changelogs, the C API (for extension writers, another audience) and boilerplate.
        if page.startswith(("whatsnew/", "c-api/")) or page in ("license.rst.txt", "contents.rst.txt"):
            continue
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        sections, current, title = [], [], page
        i = 0
        while i < len(lines):
            heading = (i + 1 < len(lines) and lines[i].strip() and HEADING_UNDERLINE.match(lines[i + 1])
                       and len(lines[i + 1].strip()) >= len(lines[i].strip()) >= 3)
            if heading:
                if current and current[-1].strip() and HEADING_UNDERLINE.match(current[-1]):
                    current.pop()  # the heading's overline
                sections.append((title, current))
                title, current = lines[i].strip(), []
                i += 2
                continue
            current.append(lines[i])
            i += 1
        sections.append((title, current))
        for n, (title, body_lines) in enumerate(sections):
            body = rest_to_text(body_lines)
            if len(body) < MIN_BODY_CHARS:
                continue
            yield {"id": f"py:{page}#{n}", "source": "py", "title": unwrap_roles(title), "body": body}


# --- Debian's package descriptions -----------------------------------------------------------

def apt_list_text(path):
    """An apt list file as text, however apt stored it (lz4, gz, xz or plain)."""
    return subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], capture_output=True,
                          text=True, check=True).stdout


def apt_list(lists_dir, suffix):
    """The main suite's list whose name ends in `suffix` (before any compression extension)."""
    codename = debian_codename()
    found = sorted(glob.glob(f"{lists_dir}/*_dists_{codename}_main_{suffix}*"))
    if not found:
        raise SystemExit(f"no {suffix} list for {codename} in {lists_dir}: run the private apt-get update")
    return found[0]


def debian_codename():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise SystemExit("no VERSION_CODENAME in /etc/os-release")


def debian_architecture():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _package_sections(packages_text):
    """package -> (section, source package): what groups descriptions into tenants, and what
    tells two binary packages of one source apart."""
    found = {}
    for record in packages_text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", record, re.M))
        if "Package" in fields:
            source = fields.get("Source", fields["Package"]).split()[0]
            found[fields["Package"]] = (fields.get("Section", ""), source)
    return found


def debian_descriptions(lists_dir):
    packages = apt_list(lists_dir, f"binary-{debian_architecture()}_Packages")
    translations = apt_list(lists_dir, "i18n_Translation-en")
    sections = _package_sections(apt_list_text(packages))
    for record in apt_list_text(translations).split("\n\n"):
        package = re.search(r"^Package: (.+)$", record, re.M)
        description = re.search(r"^Description-en: (.*)\n((?: .*\n?)*)", record, re.M)
        if not package or not description:
            continue
        short = description.group(1).strip()
        long_lines = [line[1:] for line in description.group(2).rstrip("\n").split("\n")]
        # " ." is an empty line in a Debian description.
        body = re.sub(r"^\.$", "", "\n".join(long_lines), flags=re.M).strip()
        if len(body) < MIN_BODY_CHARS:
            continue
        name = package.group(1)
        section, source = sections.get(name, ("", name))
        yield {"id": f"deb:{name}", "source": "deb", "title": name, "short": short, "body": body,
               "section": section, "source_package": source}

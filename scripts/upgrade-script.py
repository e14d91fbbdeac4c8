#!/usr/bin/env python3
"""Generates the upgrade script of the version in Cargo.toml, and checks that
released files never change.

An upgrade script sql/platform--A--B.sql is never written by hand. It is
  1. the state changes from A to B, written by hand in sql/upgrades/A--B.sql
     (ALTERs, backfills, DROPs of functions whose signature changes); a line
     `-- @after-code` in it sends what follows to the end, after the code;
  2. the code of B exactly as a fresh install of B runs it: every Rust
     function and every SQL file outside sql/schema/ (functions, triggers,
     views, privileges, all re-runnable), in the order `cargo pgrx schema`
     puts them.
State (sql/schema/) is what a fresh install creates and an upgrade reaches
through step 1, so it is left out of step 2.

Usage:
  scripts/upgrade-script.py            write the upgrade script into the current version
  scripts/upgrade-script.py --check    fail if a committed upgrade script differs from what
                                       the sources generate, or a released file changed
  scripts/upgrade-script.py --freeze   at a release: record the install script and the
                                       upgrade script of the current version as released
The install script comes from `cargo pgrx schema pgNN` (NN: $PLATFORM_SCHEMA_PG, default 16);
--schema FILE uses a schema generated before.
"""

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL = ROOT / "sql"
RELEASED = SQL / "released"
MANIFEST = RELEASED / "SHA256SUMS"
EXTENSION = "platform"

BEGIN = "/* <begin connected objects> */"
END = "/* </end connected objects> */"
AFTER_CODE = "-- @after-code"


def fail(message):
    print(f"upgrade-script: {message}", file=sys.stderr)
    sys.exit(1)


def current_version():
    match = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    return match.group(1)


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def install_script(schema_file):
    if schema_file:
        return Path(schema_file).read_text()
    pg = os.environ.get("PLATFORM_SCHEMA_PG", "16")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "schema.sql"
        subprocess.run(
            ["cargo", "pgrx", "schema", f"pg{pg}", "--out", str(out)],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )
        return out.read_text()


def blocks(schema):
    """The entities of a pgrx install script, in its order, as text."""
    found = []
    rest = schema
    while BEGIN in rest:
        start = rest.index(BEGIN) + len(BEGIN)
        stop = rest.index(END, start)
        found.append(rest[start:stop].strip("\n"))
        rest = rest[stop + len(END):]
    return found


def declared_fragments():
    """The SQL files of an install script as src/lib.rs declares them
    (extension_sql_file!), in its order: (path, name, SQL names required)."""
    declared = []
    for call in re.findall(r"extension_sql_file!\((.*?)\);", (ROOT / "src" / "lib.rs").read_text(), re.S):
        path = ROOT / "src" / re.match(r'\s*"([^"]+)"', call).group(1)
        name = re.search(r'name\s*=\s*"([^"]+)"', call)
        requires = re.search(r"requires\s*=\s*\[(.*?)\]", call, re.S)
        declared.append((
            path.resolve(),
            name.group(1) if name else ("finalize" if re.search(r"\bfinalize\b", call) else path.stem),
            re.findall(r'"([^"]+)"', requires.group(1)) if requires else [],
        ))
    on_disk = {
        path.resolve() for path in SQL.rglob("*.sql")
        if path.parent not in (SQL / "upgrades", RELEASED)
        and not (path.parent == SQL and path.name.startswith(f"{EXTENSION}--"))
    }
    undeclared = on_disk - {path for path, _, _ in declared}
    if undeclared:
        fail(f"not loaded by src/lib.rs (extension_sql_file!): {sorted(str(p) for p in undeclared)}")
    return declared


def code_files():
    """The SQL files outside sql/schema/ in an order that runs: each after the
    code files it requires, ties in src/lib.rs's order, the finalize file last."""
    declared = [entry for entry in declared_fragments() if entry[0].parent != SQL / "schema"]
    names = {name for _, name, _ in declared}
    done, ordered = set(), []
    while len(ordered) < len(declared):
        ready = [
            entry for entry in declared
            if entry[1] not in done and entry[1] != "finalize"
            and all(r in done or r not in names for r in entry[2])
        ] or [entry for entry in declared if entry[1] == "finalize" and entry[1] not in done]
        if not ready:
            fail(f"the requires of src/lib.rs form a cycle among {sorted(names - done)}")
        ordered.append(ready[0])
        done.add(ready[0][1])
    return [path for path, _, _ in ordered]


def code(schema):
    """The code of the current version, each piece headed by its source: the
    Rust functions (by name: they depend on no SQL of the extension), then the
    SQL code files."""
    rust = {}
    for block in blocks(schema):
        lines = block.split("\n")
        if lines[0].startswith("-- src/") and len(lines) > 1 and lines[1].startswith(f"-- {EXTENSION}::"):
            entity = lines[1][3:]
            body = "\n".join(lines[2:])
            if not body.startswith("CREATE OR REPLACE FUNCTION"):
                fail(f"{entity} is created without OR REPLACE: mark it #[pg_extern(create_or_replace)]")
            rust[entity.rsplit("::", 1)[1]] = f"-- {entity} (Rust)\n{body}"
    pieces = [rust[name] for name in sorted(rust)]
    for path in code_files():
        pieces.append(f"-- {path.relative_to(ROOT)}\n{path.read_text().strip()}")
    return pieces


def upgrade_script(previous, version, schema):
    delta_path = SQL / "upgrades" / f"{previous}--{version}.sql"
    delta = delta_path.read_text().strip("\n")
    before, _, after = delta.partition(AFTER_CODE)
    parts = [
        f"-- {EXTENSION} {previous} to {version}. GENERATED by scripts/upgrade-script.py from\n"
        f"-- {delta_path.relative_to(ROOT)} (the state changes, written by hand) and the code of\n"
        f"-- {version} as a fresh install runs it. Do not edit: change those and run the script.",
        f"\\echo Use \"ALTER EXTENSION {EXTENSION} UPDATE TO '{version}'\" to load this file. \\quit",
        f"-- ======== State changes: {delta_path.relative_to(ROOT)}\n\n{before.strip()}",
        f"-- ======== Code of {version}",
        *code(schema),
    ]
    if after.strip():
        parts.append(f"-- ======== After the code: {delta_path.relative_to(ROOT)}\n\n{after.strip()}")
    return "\n\n".join(parts) + "\n"


def deltas():
    """(A, B) for every sql/upgrades/A--B.sql."""
    pairs = []
    for path in (SQL / "upgrades").glob("*.sql"):
        previous, _, version = path.stem.partition("--")
        pairs.append((previous, version))
    return sorted(pairs, key=lambda pair: version_key(pair[1]))


def released():
    """{path relative to the root: sha256} of every released file."""
    recorded = {}
    if MANIFEST.exists():
        for line in MANIFEST.read_text().splitlines():
            digest, name = line.split(maxsplit=1)
            recorded[name] = digest
    return recorded


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_released(version):
    problems = []
    recorded = released()
    for name, digest in recorded.items():
        path = ROOT / name
        if not path.exists():
            problems.append(f"{name} is released and missing")
        elif sha256(path) != digest:
            problems.append(f"{name} is released and has changed (a released file is never edited)")
    # Every install script kept, and every upgrade script into a released
    # version, must be recorded.
    released_versions = {
        p.stem.removeprefix(f"{EXTENSION}--") for p in RELEASED.glob(f"{EXTENSION}--*.sql") if "--" not in p.stem.removeprefix(f"{EXTENSION}--")
    }
    for path in list(RELEASED.glob("*.sql")) + list(SQL.glob(f"{EXTENSION}--*--*.sql")):
        name = str(path.relative_to(ROOT))
        target = path.stem.split("--")[-1]
        if name not in recorded and (path.parent == RELEASED or target in released_versions):
            problems.append(f"{name} belongs to a release but is not recorded in {MANIFEST.relative_to(ROOT)}")
    if version in released_versions:
        problems.append(f"{version} is released: open the next version in Cargo.toml before changing sql/")
    # The manifest only grows: no recorded line was ever changed or removed.
    try:
        history = subprocess.run(
            ["git", "log", "--format=", "-p", "--", str(MANIFEST.relative_to(ROOT))],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        removed = [line for line in history.splitlines() if line.startswith("-") and not line.startswith("---")]
        if removed:
            problems.append(f"{MANIFEST.relative_to(ROOT)} had lines changed or removed in its history: {removed[:3]}")
    except (OSError, subprocess.CalledProcessError):
        print("upgrade-script: no git history here; the manifest's history is not checked", file=sys.stderr)
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument("--schema", help="a `cargo pgrx schema` output to use instead of generating one")
    args = parser.parse_args()

    version = current_version()
    into_current = [(a, b) for a, b in deltas() if b == version]
    if len(into_current) > 1:
        fail(f"more than one delta into {version}: {into_current}")
    schema = install_script(args.schema)

    if args.freeze:
        lines = MANIFEST.read_text().splitlines() if MANIFEST.exists() else []
        install = RELEASED / f"{EXTENSION}--{version}.sql"
        if install.exists():
            fail(f"{install.relative_to(ROOT)} exists: {version} is released already")
        install.write_text(schema)
        for path in [install] + [SQL / f"{EXTENSION}--{a}--{b}.sql" for a, b in into_current]:
            lines.append(f"{sha256(path)}  {path.relative_to(ROOT)}")
        MANIFEST.write_text("\n".join(lines) + "\n")
        print(f"released {version}: {install.relative_to(ROOT)} and its checksums recorded")
        return

    problems = []
    for previous, target in into_current:
        path = SQL / f"{EXTENSION}--{previous}--{target}.sql"
        generated = upgrade_script(previous, target, schema)
        if args.check:
            if not path.exists() or path.read_text() != generated:
                problems.append(
                    f"{path.relative_to(ROOT)} differs from what the sources generate: run scripts/upgrade-script.py"
                )
        else:
            path.write_text(generated)
            delta_lines = len((SQL / "upgrades" / f"{previous}--{target}.sql").read_text().splitlines())
            print(f"wrote {path.relative_to(ROOT)}: {len(generated.splitlines())} lines, "
                  f"{delta_lines} of them hand-written in sql/upgrades/{previous}--{target}.sql")
    if args.check:
        problems += check_released(version)
        if problems:
            fail("\n  " + "\n  ".join(problems))
        print("upgrade-script: the upgrade script is what the sources generate; released files unchanged")


if __name__ == "__main__":
    main()

//! Snapshots of a database to compare two of them: what the extension put in
//! the catalog, and what the tables hold.

use std::collections::BTreeMap;

use postgres::Client;

/// One line per catalog fact about the extension: its member objects, each
/// table's flags and privileges, columns in order, constraints, indexes,
/// policies, triggers, functions (signature, defaults, properties, privileges,
/// a digest of the body), views, composite types, the tables registered for
/// pg_dump, and the extension's settings.
/// Privileges are normalised: a NULL ACL is the default ACL it stands for,
/// and the order of the entries does not count.
const CATALOG_SNAPSHOT: &str = r#"
WITH ext AS (
    SELECT oid, extconfig FROM pg_extension WHERE extname = 'platform'
), members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), relations AS (
    SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
), functions AS (
    SELECT p.* FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
)
SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
UNION ALL
SELECT format('relation %s kind=%s rls=%s force=%s options=%s acl=%s', c.oid::regclass, c.relkind,
              c.relrowsecurity, c.relforcerowsecurity, c.reloptions,
              (SELECT array_agg(x::text ORDER BY x::text)
               FROM unnest(coalesce(c.relacl, acldefault('r', c.relowner))) x))
FROM relations c
UNION ALL
SELECT format('column %s #%s %s %s notnull=%s default=%s generated=%s identity=%s',
              a.attrelid::regclass,
              row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
              a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
              pg_get_expr(d.adbin, d.adrelid), a.attgenerated, a.attidentity)
FROM pg_attribute a
JOIN relations c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT format('constraint %s %s %s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid))
FROM pg_constraint k JOIN relations c ON c.oid = k.conrelid
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN relations c ON c.oid = i.indrelid
UNION ALL
SELECT format('policy %s %s cmd=%s permissive=%s roles=%s using=%s check=%s',
              p.polrelid::regclass, p.polname, p.polcmd, p.polpermissive, p.polroles,
              pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
FROM pg_policy p JOIN relations c ON c.oid = p.polrelid
UNION ALL
SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
FROM pg_trigger t JOIN relations c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal
UNION ALL
SELECT format('function %s(%s) returns %s lang=%s volatile=%s parallel=%s strict=%s '
              'definer=%s leakproof=%s cost=%s rows=%s config=%s acl=%s body=%s comment=%s',
              p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
              l.lanname, p.provolatile, p.proparallel, p.proisstrict, p.prosecdef,
              p.proleakproof, p.procost, p.prorows, p.proconfig,
              (SELECT array_agg(x::text ORDER BY x::text)
               FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) x),
              md5(p.prosrc || coalesce(p.probin, '')),
              obj_description(p.oid, 'pg_proc'))
FROM functions p JOIN pg_language l ON l.oid = p.prolang
UNION ALL
SELECT format('view %s %s', c.oid::regclass, md5(pg_get_viewdef(c.oid)))
FROM relations c WHERE c.relkind IN ('v', 'm')
UNION ALL
SELECT format('type %s #%s %s %s', t.oid::regtype,
              row_number() OVER (PARTITION BY t.oid ORDER BY a.attnum),
              a.attname, format_type(a.atttypid, a.atttypmod))
FROM members m
JOIN pg_type t ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'dumped ' || t::regclass FROM ext, unnest(ext.extconfig) AS t
UNION ALL
SELECT format('setting %s type=%s context=%s unit=%s min=%s max=%s default=%s description=%s',
              name, vartype, context, unit, min_val, max_val, boot_val, short_desc)
FROM pg_settings WHERE name LIKE 'platform.%'
"#;

/// The catalog snapshot of the database `client` is connected to, sorted.
pub fn catalog(client: &mut Client) -> Vec<String> {
    // The settings are registered when the library loads; any of its
    // functions loads it.
    client
        .execute("SELECT platform_exact_scan_limit()", &[])
        .expect("load the extension's library");
    let mut lines: Vec<String> = client
        .query(CATALOG_SNAPSHOT, &[])
        .expect("catalog snapshot")
        .iter()
        .map(|row| row.get(0))
        .collect();
    lines.sort();
    lines
}

/// The columns of every platform table, by table name.
pub fn table_columns(client: &mut Client) -> BTreeMap<String, Vec<String>> {
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in client
        .query(
            "SELECT t.table_name::text, a.attname::text
             FROM (SELECT table_name FROM platform_tenant_tables()
                   UNION ALL SELECT 'verification_tokens'::regclass) t
             JOIN pg_attribute a ON a.attrelid = t.table_name
             WHERE a.attnum > 0 AND NOT a.attisdropped
             ORDER BY 1, a.attnum",
            &[],
        )
        .expect("list the platform tables' columns")
    {
        columns.entry(row.get(0)).or_default().push(row.get(1));
    }
    columns
}

/// One line per table of `columns`: its row count and a digest of its rows
/// as JSON, restricted to the columns given (so that data can be compared
/// across a change that adds or rewrites columns).
pub fn table_contents(client: &mut Client, columns: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    columns
        .iter()
        .map(|(table, keep)| {
            let row = client
                .query_one(
                    &format!(
                        "SELECT count(*)::text,
                                md5(coalesce(string_agg(r, ',' ORDER BY r), ''))
                         FROM (SELECT (SELECT jsonb_object_agg(key, value)
                                       FROM jsonb_each(to_jsonb(x)) WHERE key = ANY($1))::text AS r
                               FROM {table} x) rows"
                    ),
                    &[keep],
                )
                .unwrap_or_else(|e| panic!("{table}: {e}"));
            format!(
                "{table}: {} rows, {}",
                row.get::<_, String>(0),
                row.get::<_, String>(1)
            )
        })
        .collect()
}

/// What is in `left` and not in `right`, and the other way round, for an
/// assertion message that shows only the differences.
pub fn differences(left: &[String], right: &[String]) -> String {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|x| !b.contains(x)).cloned().collect()
    };
    format!(
        "only in the first:\n  {}\nonly in the second:\n  {}",
        only(left, right).join("\n  "),
        only(right, left).join("\n  ")
    )
}

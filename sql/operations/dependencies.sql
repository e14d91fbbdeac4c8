-- The dependencies this release is installed next to, checked at every
-- install and upgrade: a warning that says what to do, never a failure
-- (platform_audit() reports the same while it lasts).
DO $dependencies$
DECLARE
    vector_version text := (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'vector');
BEGIN
    -- pgvector 0.6.0 to 0.8.1: a parallel HNSW index build can read other
    -- relations' memory or crash the server (CVE-2026-3172).
    IF string_to_array(vector_version, '.')::int[] BETWEEN '{0,6,0}' AND '{0,8,1}' THEN
        RAISE WARNING 'pgvector % has CVE-2026-3172: a parallel HNSW index build can read other relations'' memory or crash the server', vector_version
            USING HINT = 'Install pgvector 0.8.2 or later, then ALTER EXTENSION vector UPDATE in every database.';
    END IF;
END
$dependencies$;

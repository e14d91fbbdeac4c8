-- Stores a document with its chunks and their embeddings in one call, as the
-- current tenant. The caller chunks (chunk_text) and embeds: the extension
-- never calls the network. chunks[i] is stored at position i - 1 with
-- embeddings[i].
CREATE OR REPLACE FUNCTION ingest_document(
    title text,
    content text,
    chunks text[],
    embeddings vector[],
    category text DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    document_embedding vector DEFAULT NULL,
    text_search_config text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := platform_tenant_required_by('ingest_document');
    document uuid;
BEGIN
    IF cardinality(coalesce(chunks, '{}')) <> cardinality(coalesce(embeddings, '{}'))
       OR array_position(chunks, NULL) IS NOT NULL OR array_position(embeddings, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'ingest_document needs one embedding per chunk and no NULLs: got % chunks and % embeddings',
                cardinality(coalesce(chunks, '{}')), cardinality(coalesce(embeddings, '{}'))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass chunk_text(content, size, overlap) and the embedding of each chunk, in the same order.';
    END IF;
    -- Bounded like every text a function works through: the content, the
    -- chunks all together, and how many chunks.
    PERFORM platform_check_text_length(content);
    PERFORM platform_check_text_length(array_to_string(chunks, ''));
    IF cardinality(chunks) > platform_max_chunks_per_document() THEN
        RAISE EXCEPTION 'the document has % chunks, more than platform.max_chunks_per_document allows (%)',
                cardinality(chunks), platform_max_chunks_per_document()
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Use larger chunks, or have an operator raise platform.max_chunks_per_document.';
    END IF;
    PERFORM platform_check_query_embedding(e) FROM unnest(embeddings) AS e;
    PERFORM platform_check_query_embedding(document_embedding);
    INSERT INTO knowledge_documents (tenant_id, title, content, category, metadata, embedding,
                                     text_search_config)
    VALUES (tenant, title, content, category, metadata, document_embedding,
            platform_text_search_config_name(
                platform_text_search_config(text_search_config, platform_tenant_text_search_setting(tenant))))
    RETURNING id INTO document;
    INSERT INTO knowledge_chunks (tenant_id, document_id, content, embedding, position)
    SELECT tenant, document, u.chunk, u.embedding, u.ordinality - 1
    FROM unnest(chunks, embeddings) WITH ORDINALITY AS u(chunk, embedding, ordinality);
    RETURN document;
END
$$;
COMMENT ON FUNCTION ingest_document(text, text, text[], vector[], text, jsonb, vector, text) IS
    'Stores a document, its chunks and their (caller-supplied) embeddings for the current tenant.';

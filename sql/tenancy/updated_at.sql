-- updated_at follows every UPDATE, whatever the client sends.
CREATE OR REPLACE FUNCTION platform_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER tenants_touch_updated_at BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION platform_touch_updated_at();
CREATE OR REPLACE TRIGGER users_touch_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION platform_touch_updated_at();
CREATE OR REPLACE TRIGGER widgets_touch_updated_at BEFORE UPDATE ON widgets
    FOR EACH ROW EXECUTE FUNCTION platform_touch_updated_at();
CREATE OR REPLACE TRIGGER knowledge_documents_touch_updated_at BEFORE UPDATE ON knowledge_documents
    FOR EACH ROW EXECUTE FUNCTION platform_touch_updated_at();
CREATE OR REPLACE TRIGGER ai_personalities_touch_updated_at BEFORE UPDATE ON ai_personalities
    FOR EACH ROW EXECUTE FUNCTION platform_touch_updated_at();

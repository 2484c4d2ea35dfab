-- Raises p_code naming the first five blockers and the total (nothing changed).
CREATE OR REPLACE FUNCTION config.refuse_blocked(p_what text, p_code text, p_blockers jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    total integer := jsonb_array_length(p_blockers);
    first text;
BEGIN
    IF total = 0 THEN
        RETURN;
    END IF;
    SELECT string_agg(format('%s %s: %s', b->>'kind', b->>'subject', b->>'reason'), '; ')
    INTO first FROM (SELECT b FROM jsonb_array_elements(p_blockers) b LIMIT 5) x;
    IF total > 5 THEN
        first := format('%s; and %s more', first, total - 5);
    END IF;
    RAISE EXCEPTION 'cannot %: % blocker(s): %; nothing changed', p_what, total, first
        USING ERRCODE = p_code, DETAIL = p_blockers::text,
              HINT = 'hierarchy orgs check lists every one with its remedy.';
END
$$;
COMMENT ON FUNCTION config.refuse_blocked(text, text, jsonb) IS 'Release 6.4: raises SQLSTATE p_code (HR070 promotion, HR071 reversal) naming the first five blockers and their total when there are any; DETAIL holds all of them as JSON.';

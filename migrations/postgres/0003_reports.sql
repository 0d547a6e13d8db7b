-- Reports read calls by the time they were first offered (GET /api/v1/reports).
CREATE INDEX call_records_offered ON call_records (offered_at_ms, id) WHERE offered_at_ms IS NOT NULL;

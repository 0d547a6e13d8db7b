-- The trunk each call came in over (issue 17): calls 110 transferred in are
-- counted apart from the citizens' own.
ALTER TABLE call_records ADD COLUMN trunk TEXT;

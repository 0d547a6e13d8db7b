-- Where each node answers SIP (issue 16): a draining node hands its waiting
-- callers to the lease holder at this address, and the holder accepts a
-- handed-over call only from a node listed here.
ALTER TABLE cluster_nodes ADD COLUMN sip_addr TEXT NOT NULL DEFAULT '';

-- Events outlive their session only as audit facts.
--
-- Each event row carries a snapshot of its session (user agent, IP
-- address, metadata) for GET /session/events and the webhooks. When the
-- sweeper deletes a session after SESSIOND_RETENTION, it now removes the
-- snapshots of that session's events in the same statement, so no stream
-- resuming from an old Last-Event-ID replays a deleted session; the audit
-- facts (which session, old and new status, when, who) stay. Readers skip
-- rows without a snapshot.
--
-- This migration does the same once for sessions the sweeper deleted
-- before: every event whose session no longer exists loses its snapshot.
-- It reads session_events once; a large audit table wants a quiet moment.
UPDATE session_events e SET session = NULL
WHERE e.session IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = e.session_id);

-- The URLs are not stored, so their positions cannot be keyed by URL
-- again: they are forgotten, and each URL starts again at the newest event
-- when the previous binary first delivers to it. Parked events are lost.
DROP TABLE webhook_dead_letters;
DELETE FROM webhook_positions;
ALTER TABLE webhook_positions DROP CONSTRAINT webhook_positions_pkey;
ALTER TABLE webhook_positions RENAME COLUMN url_hash TO url;
ALTER TABLE webhook_positions ADD PRIMARY KEY (url);

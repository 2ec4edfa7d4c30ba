-- A channel's HLS ladder: a JSON array of rungs (`"480p"` or a built-in preset id) besides the
-- source rendition. NULL: the default ladder (1080p, 720p, 480p); `[]`: source only.
ALTER TABLE channels ADD COLUMN hls_ladder TEXT;

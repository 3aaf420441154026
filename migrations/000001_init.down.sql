DROP TABLE session_events;
DROP TABLE sessions;
DROP FUNCTION sessions_keep_terminal();
DROP TABLE session_users;
DROP TABLE clients;

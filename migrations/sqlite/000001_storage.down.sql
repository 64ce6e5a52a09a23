DROP TABLE log;
DROP TABLE objects;
DROP TABLE revision;

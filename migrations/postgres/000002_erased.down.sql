DROP TABLE erased;

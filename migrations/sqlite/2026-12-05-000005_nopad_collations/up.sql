-- MariaDB only: SQLite's BINARY collation already compares every byte, trailing spaces
-- included. The folder exists so both trees hold the same migrations.
SELECT 1;

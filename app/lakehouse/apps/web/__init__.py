"""The demo web page: edit a movie in Postgres and watch the change arrive in silver (Trino)."""

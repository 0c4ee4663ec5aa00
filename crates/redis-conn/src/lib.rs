//! redis-conn

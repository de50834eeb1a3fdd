"""Authentication, permissions and rate limits, enforced in one interceptor."""

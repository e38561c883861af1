"""Maintainer tools of the course repository (not part of course_lib)."""

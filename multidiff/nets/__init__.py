"""Networks, one architecture per file; they know nothing of schedules."""

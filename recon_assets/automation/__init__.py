"""What runs without anyone acting: jobs, the weekly and daily schedules, the ledger sensor."""

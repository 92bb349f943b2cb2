"""通知: the reminders and escalations sent to the logged-in user."""

"""The to-do list (待办) and the task page."""

"""统计 and 工作评比: the supervisors' dashboard per org unit and the monthly ranking of counties."""

"""Comments and attachments on a case (意见与附件), shown on the case page and the task page."""

"""The process diagram of an instance (bpmn-js), with its completed steps and current position marked."""

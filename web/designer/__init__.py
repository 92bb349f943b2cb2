"""流程设计 for designers: definitions and versions, drafts edited in the browser modeler, deploy, diff."""

"""迁移在办实例: designers move running instances of one definition version to another (engine.migration)."""

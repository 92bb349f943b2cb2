"""批量导入: bring existing offenders and open disputes in from CSV or XLSX (engine.imports)."""

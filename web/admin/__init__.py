"""System administration pages (三员: administration is not case work): the working-day calendar."""

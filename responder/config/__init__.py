"""Configuration: YAML with line marks in, frozen specs that carry their origin out."""

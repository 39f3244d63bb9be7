"""Marcus sources: what each dataset reads and how."""

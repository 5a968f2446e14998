"""Customers tell the story: invitations from a verified visit, the testimonial form's answers,
and the pull of accepted testimonials into ``content/`` on a git branch."""

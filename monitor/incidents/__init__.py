"""The safety lead's review: incidents by filter and text, reports, and CSV and PDF exports."""

"""Jobs: admission, reading, listing, cancelling and following a job."""

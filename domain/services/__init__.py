"""Use-case services. Each method takes a unit of work and the acting principal as keyword
arguments, does the work through ports, and leaves committing to the caller."""

"""A change plan shown to people and programs: text, markdown (pull requests), JSON."""

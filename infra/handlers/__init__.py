"""Lambda handlers the stack deploys itself (custom resources), each packaged from this folder as a local asset."""

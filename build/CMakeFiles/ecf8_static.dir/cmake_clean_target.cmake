file(REMOVE_RECURSE
  "libecf8.a"
)

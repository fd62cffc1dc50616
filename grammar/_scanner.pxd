# Types for the compiled scanner (Cython "augmenting .pxd"): _scanner.py stays plain
# Python and runs as it is without Cython; when setup.py compiles it, these
# declarations make _Scan an extension type whose members() walk indexes the split
# pieces with C integers and compares delimiter characters as C characters.
cimport cython

cdef class _Scan:
    cdef list texts
    cdef str delims
    cdef list escapes
    cdef bint escaped
    cdef Py_ssize_t max_depth

    cpdef str restore(self, str stripped)

    @cython.locals(
        texts=list, delims=str, members=list, t=str, s=str, d=Py_UCS4,
        after_group=bint, pieces=list,
    )
    cpdef tuple members(self, Py_ssize_t i, Py_ssize_t depth)

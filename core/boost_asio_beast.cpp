// Asio's and Beast's compiled parts (their non-template functions), built once here: every target
// defines BOOST_ASIO_SEPARATE_COMPILATION and BOOST_BEAST_SEPARATE_COMPILATION (the top-level
// CMakeLists.txt), so no other translation unit compiles them again.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>

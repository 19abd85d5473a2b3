# cmake/install.cmake — `cmake --install`: headers, static libraries, tools and the CMake package; include()d at
# the end of the root CMakeLists, once every target exists.
#
# What lands under the prefix:
#   include/bertforge/{core,autograd,ops,models,train,quant,cuda}/*.h   included as "core/tensor.h", as in the tree
#   lib/libbertforge_*.a                                              one static library per layer
#   bin/bert_*                                                        the tools
#   lib/cmake/bertforge/                                              bertforgeConfig.cmake and its version file
#
# find_package(bertforge) then gives bertforge::bertforge (everything: every layer, plus the CUDA backend in a
# CUDA build) and one target per layer: bertforge::core, ::autograd, ::gemm, ::ops, ::models, ::train, ::quant,
# ::cuda. Each carries the include directory, the dependencies (found again by bertforgeConfig.cmake) and the
# definitions of this build: BERTFORGE_MPI, BERTFORGE_NCCL, BERTFORGE_CUDA. examples/tiny_bert is a consumer;
# tests/e2e/install_find_package.sh installs, builds it and runs it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BERTFORGE_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/bertforge)
set(BERTFORGE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/bertforge)

# ---- The exported targets ------------------------------------------------------
set(BERTFORGE_LAYERS core autograd gemm ops models train quant)
if(BERTFORGE_CUDA)
  list(APPEND BERTFORGE_LAYERS cuda)
endif()
set(BERTFORGE_LIBRARIES)
foreach(layer ${BERTFORGE_LAYERS})
  set_target_properties(bertforge_${layer} PROPERTIES EXPORT_NAME ${layer})  # bertforge::core, ...
  list(APPEND BERTFORGE_LIBRARIES bertforge_${layer})
endforeach()

# Headers are included from the repository root in the tree and from include/bertforge once installed. The
# root-wide include_directories() of the root CMakeLists is not exported; this is.
target_include_directories(bertforge_core PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
                                                 $<INSTALL_INTERFACE:${BERTFORGE_INSTALL_INCLUDEDIR}>)
# The sanitizer runtimes: the objects in the libraries call them, so a program linking the installed libraries
# links them too (in the tree, add_link_options does).
if(BERTFORGE_SANITIZE)
  target_link_options(bertforge_core INTERFACE $<INSTALL_INTERFACE:-fsanitize=address,undefined>)
endif()
# A program built against a CUDA build sees BERTFORGE_CUDA, as the tools do, to register the backend
# (cuda/device.h). BERTFORGE_MPI and BERTFORGE_NCCL already travel with bertforge_train.
if(BERTFORGE_CUDA)
  target_compile_definitions(bertforge_cuda INTERFACE $<INSTALL_INTERFACE:BERTFORGE_CUDA=1>)
endif()

# bertforge::bertforge, what a program links.
add_library(bertforge INTERFACE)
target_link_libraries(bertforge INTERFACE bertforge_quant)
if(BERTFORGE_CUDA)
  # Linked whole (cuda/CMakeLists.txt); the exported name is spelled out, as export() does not rename a target
  # inside $<LINK_LIBRARY>.
  target_link_libraries(bertforge INTERFACE
    "$<BUILD_INTERFACE:$<LINK_LIBRARY:WHOLE_ARCHIVE,bertforge_cuda>>"
    "$<INSTALL_INTERFACE:$<LINK_LIBRARY:WHOLE_ARCHIVE,bertforge::cuda>>")
endif()

install(TARGETS ${BERTFORGE_LIBRARIES} bertforge EXPORT bertforgeTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT bertforgeTargets NAMESPACE bertforge:: DESTINATION ${BERTFORGE_INSTALL_CMAKEDIR})

# ---- Headers -------------------------------------------------------------------
install(DIRECTORY core autograd ops models train quant DESTINATION ${BERTFORGE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
if(BERTFORGE_CUDA)  # the host API (device.h, gemm.h, ...); the kernel sources (*.cu, *.cuh) stay inside the library
  install(DIRECTORY cuda DESTINATION ${BERTFORGE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
endif()

# ---- Tools: every bert_* executable of the root CMakeLists (the tools list) ---------
get_directory_property(BERTFORGE_ROOT_TARGETS BUILDSYSTEM_TARGETS)
set(BERTFORGE_TOOLS)
foreach(target ${BERTFORGE_ROOT_TARGETS})
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE" AND target MATCHES "^bert_")
    list(APPEND BERTFORGE_TOOLS ${target})
  endif()
endforeach()
# Installed tools keep the run path to the shared libraries outside the build (CUDA, NCCL, MPI) they linked.
set_target_properties(${BERTFORGE_TOOLS} PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
install(TARGETS ${BERTFORGE_TOOLS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# ---- The package: bertforgeConfig.cmake and bertforgeConfigVersion.cmake ------------
if(BERTFORGE_CUDA)
  get_filename_component(BERTFORGE_CUDA_TOOLKIT_ROOT "${CUDAToolkit_BIN_DIR}" DIRECTORY)  # a hint for the user
endif()
configure_package_config_file(cmake/bertforgeConfig.cmake.in ${PROJECT_BINARY_DIR}/bertforgeConfig.cmake
  INSTALL_DESTINATION ${BERTFORGE_INSTALL_CMAKEDIR})
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/bertforgeConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/bertforgeConfig.cmake ${PROJECT_BINARY_DIR}/bertforgeConfigVersion.cmake
  DESTINATION ${BERTFORGE_INSTALL_CMAKEDIR})

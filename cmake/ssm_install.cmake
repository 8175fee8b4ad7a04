# cmake --install: headers, the static library ssm_core (target ssm::core), the CUDA library when
# built (ssm::cuda, ssm::cuda_math), the apps, the Python package (python/CMakeLists.txt), an
# exported CMake package (ssmlabConfig.cmake, ssmlabConfigVersion.cmake) and ssmlab.pc.
#   cmake --install build/release --prefix P
# Nothing installed names the source or build tree: the config and .pc find everything relative
# to their own location, the dependencies by find_dependency or pkg-config.
include(CMakePackageConfigHelpers)  # (GNUInstallDirs: included at the top, lib/ needs it first)
set(SSM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/ssmlab)

install(DIRECTORY lib/include/ssm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(DIRECTORY cuda/include/ssm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
set(_ssm_export ssm_core ssm_cuda_math)
if(TARGET ssm_cuda)
  list(APPEND _ssm_export ssm_cuda)
endif()
install(TARGETS ${_ssm_export} EXPORT ssmlabTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ssmlabTargets NAMESPACE ssm:: DESTINATION ${SSM_INSTALL_CMAKEDIR} COMPONENT dev)

configure_package_config_file(cmake/ssmlabConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ssmlabConfig.cmake INSTALL_DESTINATION ${SSM_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ssmlabConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)  # 0.x: a minor version may break the API
install(FILES ${PROJECT_BINARY_DIR}/ssmlabConfig.cmake ${PROJECT_BINARY_DIR}/ssmlabConfigVersion.cmake
        DESTINATION ${SSM_INSTALL_CMAKEDIR} COMPONENT dev)
# The same -march as the library for pkg-config's consumers (see lib/CMakeLists.txt: Eigen's ABI).
set(SSM_PC_ARCH_FLAGS "")
if(SSM_ARCH_FLAGS)
  list(JOIN SSM_ARCH_FLAGS " " _flags)
  set(SSM_PC_ARCH_FLAGS " ${_flags}")
endif()
configure_file(cmake/ssmlab.pc.in ${PROJECT_BINARY_DIR}/ssmlab.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ssmlab.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev)

if(SSM_BUILD_APPS)
  # The lesson apps (not the benchmarks): every ssm-* executable of apps/.
  get_property(_ssm_apps DIRECTORY apps PROPERTY BUILDSYSTEM_TARGETS)
  list(FILTER _ssm_apps INCLUDE REGEX "^ssm-")
  install(TARGETS ${_ssm_apps} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT apps)
endif()
